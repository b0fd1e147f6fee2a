"""One conformance run: a form and its templates, a real lab running the rendered customer
files, the checks, a verdict; the lab is removed afterwards, pass or fail (``keep`` leaves
a failed one up for inspection)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lab.conformance import checks
from lab.core.errors import ConvergenceFailed, InputError, VpnlabError
from lab.core.paths import WORK_ROOT
from lab.core.redaction import redact
from lab.core.results import CheckResult
from lab.ops.bringup import up
from lab.providers.rules import Finding
from lab.providers.setup import FormRejected, prepare
from lab.session.handle import RunningLab
from lab.topology import load_lab

Progress = Callable[[str], None]
LabHook = Callable[[RunningLab], None]  # e.g. record the lab for a report
WORK = WORK_ROOT / "conformance"  # each run's topology and customer bundle (0600)


@dataclass
class Report:
    form: str
    lab: str
    profile: str = ""
    runtime: str = ""
    results: list[CheckResult] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    error: str = ""  # the form or templates were refused (exit 2), or the lab broke
    refused: bool = False  # bad input: nothing was started
    seconds: float = 0.0
    kept: bool = False

    @property
    def passed(self) -> bool:
        return not self.error and all(r.verdict != "fail" for r in self.results)


def _quiet(message: str) -> None:
    pass


def run(
    form: Path,
    templates: Path | None = None,
    *,
    runtime: str = "netns",
    keep: bool = False,
    name: str | None = None,
    progress: Progress = _quiet,
    before_down: LabHook | None = None,
) -> Report:
    """Run one form. Never raises for what the form, the templates or the lab got wrong:
    that is the report's verdict; secrets are redacted from everything it holds.
    ``before_down`` sees the lab after the checks, while it is still up."""
    t0 = time.monotonic()
    report = Report(str(form), name or "", runtime=runtime)
    secrets: list[str] = []
    try:
        prepared = prepare(form, templates, name)
    except (FormRejected, InputError) as exc:
        report.error, report.refused = str(exc), True
        return report
    report.lab, report.profile = prepared.plan.lab.name, prepared.profile.name
    report.warnings = prepared.findings
    secrets = prepared.plan.psks()
    try:
        report.results += checks.template_checks(prepared)
    except InputError as exc:
        report.error, report.refused = str(exc), True
        return report
    work = WORK / prepared.plan.lab.name
    shutil.rmtree(work, ignore_errors=True)
    lab = load_lab(prepared.write(work))
    progress(f"{form}: bringing up lab {lab.name} ({runtime})")
    running, error = None, None
    try:
        try:
            running = up(lab, runtime=runtime, keep_on_timeout=True)
        except ConvergenceFailed as exc:
            error = str(exc)
            running = RunningLab.attach(lab.name)
        progress(f"{form}: checking")
        up_results = checks.tunnels_up(running, error)
        report.results += up_results
        all_up = all(r.verdict == "pass" for r in up_results)
        report.results += checks.proposals(running, prepared.plan)
        report.results += checks.lifetimes(running, prepared.plan)
        report.results += checks.routes(running, prepared.plan)
        report.results += checks.services(running, prepared.plan)
        report.results += checks.nat_egress(running, prepared.plan)
        report.results += checks.failover(running, prepared.plan, all_up)
    except VpnlabError as exc:
        report.error = f"{type(exc).__name__}: {exc}"
    finally:
        if running is not None and before_down is not None:
            try:
                before_down(running)
            except Exception as exc:  # the lab still goes down, the verdict stands
                progress(f"{form}: not recorded: {exc!r}")
        report.kept = keep and not report.passed and running is not None
        if running is not None and not report.kept:
            running.down()
        if not report.kept:
            shutil.rmtree(work, ignore_errors=True)
        report.seconds = time.monotonic() - t0
        _redact(report, secrets)
    return report


def _redact(report: Report, secrets: list[str]) -> None:
    """No key in anything the report will print or write."""
    report.error = redact(report.error, secrets)
    report.results = [r.redacted(secrets) for r in report.results]
