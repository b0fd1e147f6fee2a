"""A lab's event timeline: one JSON line per event in the lab's directory, written by the
recorder (SA and BGP changes), by faults and by probes, read by ``vpnlab events``.

Every event carries wall-clock time (for people and logs) and the host's monotonic clock
(for intervals: it never steps), both taken when the event happened or was seen.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, Field

from lab.core.paths import lab_dir

EVENTS = "events.jsonl"
# One write per event, opened O_APPEND: lines from several processes never interleave
# (a write this short to a local file is not split).
MAX_LINE = 4000


class Event(BaseModel):
    kind: str  # ike-up, ike-down, child-up, child-down, ike-rekey, child-rekey, bgp, fault, ...
    text: str
    node: str | None = None
    tunnel: str | None = None
    wall: float = Field(default_factory=time.time)
    mono: float = Field(default_factory=time.monotonic)
    data: dict = {}

    def line(self, t0: float | None = None) -> str:
        clock = time.strftime("%H:%M:%S", time.localtime(self.wall))
        clock += f".{int(self.wall % 1 * 1000):03d}"
        rel = f" +{self.mono - t0:8.3f}s" if t0 is not None else ""
        where = " ".join(x for x in (self.node, self.tunnel) if x)
        return f"{clock}{rel}  {self.kind:<12} {where:<18} {self.text}"


def path(lab: str) -> Path:
    return lab_dir(lab) / EVENTS


def record(lab: str, event: Event) -> None:
    """Append ``event`` to the lab's timeline; nothing if the lab is gone."""
    line = event.model_dump_json()
    if len(line) > MAX_LINE:  # keep the line whole JSON: drop the details, cut the text
        short = event.model_copy(update={"data": {}, "text": event.text[: MAX_LINE // 2]})
        line = short.model_dump_json()
    line += "\n"
    try:
        fd = os.open(path(lab), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    except FileNotFoundError:
        return
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def read(lab: str) -> list[Event]:
    try:
        text = path(lab).read_text()
    except FileNotFoundError:
        return []
    return [Event.model_validate_json(line) for line in text.splitlines() if line.strip()]


def follow(lab: str, poll: float = 0.2) -> Iterator[Event]:
    """Every event, then each new one as it is written, until the lab is gone."""
    offset = 0
    pending = ""
    while True:
        try:
            with path(lab).open() as f:
                f.seek(offset)
                chunk = f.read()
                offset = f.tell()
        except FileNotFoundError:
            if not lab_dir(lab).exists():
                return
            chunk = ""
        pending += chunk
        *lines, pending = pending.split("\n")
        for line in lines:
            if line.strip():
                yield Event.model_validate_json(line)
        if not chunk:
            time.sleep(poll)  # waiting for the file to grow: there is no event to poll


# what the daemons say, as events ------------------------------------------------------------
VICI_KINDS = {
    "ike-updown": "ike",
    "child-updown": "child",
    "ike-rekey": "ike",
    "child-rekey": "child",
}


def from_vici(node: str, name: str, data: dict) -> list[Event]:
    """Events from one vici event (``ike-updown`` etc.): its payload is {connection: SA}."""
    out = []
    what = VICI_KINDS.get(name)
    if what is None:
        return out
    rekey = name.endswith("rekey")
    up = data.get("up") in ("yes", b"yes")
    for conn, sa in data.items():
        if not isinstance(sa, dict):
            continue
        if what == "child":
            children = sa.get("child-sas", {})
            for child in children.values():
                state = "rekey" if rekey else ("up" if up else "down")
                out.append(
                    Event(
                        kind=f"child-{state}",
                        node=node,
                        tunnel=conn,
                        text=f"CHILD_SA {child.get('name', '?')} {state} "
                        f"(spi in {child.get('spi-in', '?')}, out {child.get('spi-out', '?')})",
                    )
                )
        else:
            state = "rekey" if rekey else ("up" if up else "down")
            peer = sa.get("remote-host", "?")
            out.append(
                Event(
                    kind=f"ike-{state}",
                    node=node,
                    tunnel=conn,
                    text=f"IKE SA {state} with {peer} (state {sa.get('state', '?')})",
                )
            )
    return out


ADJCHANGE = re.compile(r"%ADJCHANGE: neighbor (\S+?)(?:\(\S*\))?(?: in vrf \S+)? (Up|Down)(.*)")


LOGGED = re.compile(r"^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d)(\.\d+)?")
LATE = 1.5  # seconds: a line read this long after bgpd logged it was written before we looked


def from_bgpd_log(node: str, line: str) -> Event | None:
    """A BGP neighbour state change from bgpd's log (``log-neighbor-changes``), stamped when
    read; a line logged well before (bgpd's file has whole seconds) keeps bgpd's time."""
    m = ADJCHANGE.search(line)
    if m is None:
        return None
    peer, state, why = m[1], m[2], m[3].strip()
    text = f"BGP {peer} {state.lower()}" + (f" ({why})" if why else "")
    event = Event(kind="bgp", node=node, text=text, data={"peer": peer, "state": state})
    if (t := LOGGED.match(line)) is not None:
        logged = time.mktime(time.strptime(t[1], "%Y/%m/%d %H:%M:%S")) + float(t[2] or 0)
        if event.wall - logged > LATE:
            event.mono -= event.wall - logged
            event.wall = logged
    return event
