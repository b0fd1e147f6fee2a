"""A conformance run as an HTML report: each form's checks (expected, seen, why) and each
form's lab as it was after its checks, before it was removed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from lab.conformance.run import Report
from lab.core.results import CheckResult
from lab.report import html, record
from lab.session.handle import RunningLab


def record_into(out_dir: Path, running: RunningLab) -> None:
    """``before_down`` for a conformance run (module level: a batch pickles it)."""
    record.save(running, out_dir / html.LABS / running.name)


def checks(reports: list[Report]) -> list[CheckResult]:
    out = []
    for rep in reports:
        form = Path(rep.form).name
        for w in rep.warnings:
            verdict = "warn" if w.level == "warning" else "error"
            out.append(CheckResult(name=f"{form}: form {w.field}", verdict=verdict, seen=w.text))
        if rep.error:
            verdict = "error" if rep.refused else "fail"
            out.append(
                CheckResult(name=f"{form}: run", verdict=verdict, seen=rep.error, record=rep.lab)
            )
        out += [replace(r, name=f"{form}: {r.name}", record=rep.lab) for r in rep.results]
    return out


def write(reports: list[Report], out_dir: Path, runtime: str) -> Path:
    passed = sum(r.passed for r in reports)
    return html.render(
        out_dir,
        title="vpnlab: conformance run",
        subtitle=f"{passed}/{len(reports)} form(s) conform, {runtime} runtime",
        checks=checks(reports),
    )
