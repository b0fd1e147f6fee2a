"""What a report keeps of one lab, taken while the lab is still up (the lab's own directory
goes with ``down``): its diagram, typed status, timeline, the daemons' logs and the captures
its timeline names. Saved as a folder a report is rendered from later, in another process
(a pytest controller, a conformance batch): ``<dir>/record.json``, ``logs/``, ``captures/``.

Every key the lab's tunnels use is replaced in what is copied: logs, status, timeline.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from pydantic import BaseModel

from lab.core.errors import VpnlabError
from lab.core.redaction import redact
from lab.observe import events as timeline
from lab.observe.events import Event
from lab.observe.status import LabStatus, collect
from lab.report import graph
from lab.session.handle import RunningLab

RECORD = "record.json"
TAIL = 60  # log lines a report shows inline; the whole log is linked


class LogFile(BaseModel):
    name: str  # node/file, e.g. cgw/charon.log
    path: str  # relative to the record's folder
    lines: int
    tail: str


class LabRecord(BaseModel):
    lab: str
    source: str
    runtime: str
    taken: float  # epoch seconds
    diagram_svg: str
    status: LabStatus | None
    status_error: str = ""
    events: list[Event]
    logs: list[LogFile]
    captures: list[str]  # relative to the record's folder


def _logs(running: RunningLab) -> dict[str, str]:
    """node/file -> text, for every daemon log the lab's nodes keep."""
    out: dict[str, str] = {}
    for node, charon in running.charons.items():
        out[f"{node}/charon.log"] = charon.log_text()
    for node, frr in running.frrs.items():
        for daemon in frr.daemons:
            text = running.runtime.read_file(node, frr.dir / f"{daemon}.log")
            if text:
                out[f"{node}/{daemon}.log"] = text
    return out


def save(running: RunningLab, dest: Path) -> LabRecord:
    """Record ``running`` into ``dest`` (created; replaced if there)."""
    secrets = running.lab.psks()
    shutil.rmtree(dest, ignore_errors=True)
    (dest / "logs").mkdir(parents=True)
    status, status_error = None, ""
    try:
        status = collect(running)
    except VpnlabError as exc:  # a lab half broken is exactly what a report is for
        status_error = f"{type(exc).__name__}: {exc}"
    diagram = graph.dot(running.lab, status).pipe(format="svg", encoding="utf-8")
    logs = []
    for name, text in _logs(running).items():
        rel = f"logs/{name.replace('/', '-')}"
        text = redact(text, secrets)
        (dest / rel).write_text(text)
        lines = text.splitlines()
        logs.append(LogFile(name=name, path=rel, lines=len(lines), tail="\n".join(lines[-TAIL:])))
    events = [
        e.model_copy(update={"text": redact(e.text, secrets)}) for e in timeline.read(running.name)
    ]
    record = LabRecord(
        lab=running.name,
        source=running.lab.source,
        runtime=running.state.runtime,
        taken=time.time(),
        diagram_svg=redact(_svg_body(diagram), secrets),
        status=status,
        status_error=status_error,
        events=events,
        logs=logs,
        captures=_copy_captures(events, dest),
    )
    (dest / RECORD).write_text(redact(record.model_dump_json(indent=1), secrets))
    return record


def _svg_body(svg: str) -> str:
    """The ``<svg>`` element alone: an XML prolog or doctype is not valid inside HTML."""
    return svg[svg.find("<svg") :]


def _copy_captures(events: list[Event], dest: Path) -> list[str]:
    """The pcaps the timeline names (``vpnlab capture``: data.pcap), copied beside the record; never
    their keys folder."""
    out = []
    for e in events:
        file = e.data.get("pcap")
        if not isinstance(file, str) or not file.endswith((".pcap", ".pcapng")):
            continue
        src = Path(file)
        if not src.is_file():
            continue
        rel = f"captures/{src.name}"
        (dest / "captures").mkdir(exist_ok=True)
        shutil.copyfile(src, dest / rel)
        out.append(rel)
    return sorted(set(out))


def load(folder: Path) -> LabRecord:
    return LabRecord.model_validate_json((folder / RECORD).read_text())
