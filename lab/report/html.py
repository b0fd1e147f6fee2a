"""One self-contained HTML file per run (a lab session, a scenario run, a conformance run):
the checks with expected and seen, then per lab its diagram, timeline plot, tunnel table,
events, and links to its logs and captures. SVG and the little script are inline, so the
file opens from disk with no network; logs and captures sit in ``labs/`` beside it.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from importlib.resources import files
from pathlib import Path

import jinja2

from lab.core.results import CheckResult
from lab.report import plot, record
from lab.report.record import LabRecord

REPORT = "report.html"
LABS = "labs"  # one recorded lab per folder, beside the report


def _env() -> jinja2.Environment:
    templates = files("lab.report") / "templates"
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: (templates / name).read_text()),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _clock(epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch)) + f".{int(epoch % 1 * 1000):03d}"


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(epoch))


def recorded(out_dir: Path) -> dict[str, LabRecord]:
    """The labs recorded under ``out_dir/labs``, by folder name."""
    base = out_dir / LABS
    if not base.is_dir():
        return {}
    return {d.name: record.load(d) for d in sorted(base.iterdir()) if (d / record.RECORD).is_file()}


def render(
    out_dir: Path,
    title: str,
    subtitle: str,
    checks: list[CheckResult],
    secrets: list[str] = (),  # type: ignore[assignment]
) -> Path:
    """Write ``out_dir/report.html`` from the checks and the labs recorded in ``out_dir``."""
    secrets = list(secrets)
    checks = [c.redacted(secrets) for c in checks]
    records = recorded(out_dir)
    anchors = {folder: "lab-" + re.sub(r"[^A-Za-z0-9_-]", "-", folder) for folder in records}
    html = (
        _env()
        .get_template("report.html.j2")
        .render(
            title=title,
            subtitle=subtitle,
            created=_when(time.time()),
            counts=Counter(c.verdict for c in checks) or {"no checks": 0},
            checks=checks,
            records=records,
            anchors=anchors,
            labs=LABS,
            plots={f: plot.svg(r.events, until=_mono_at(r)) for f, r in records.items()},
            kinds={f: sorted({e.kind for e in r.events}) for f, r in records.items()},
            t0={f: min((e.mono for e in r.events), default=0.0) for f, r in records.items()},
            clock=_clock,
            when=_when,
        )
    )
    out = out_dir / REPORT
    out_dir.mkdir(parents=True, exist_ok=True)
    out.write_text(html)
    return out


def _mono_at(r: LabRecord) -> float | None:
    """The record's time on the events' monotonic clock (the plot runs up to it)."""
    if not r.events:
        return None
    last = r.events[-1]
    return last.mono + max(0.0, r.taken - last.wall)
