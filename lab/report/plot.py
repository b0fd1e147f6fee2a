"""The timeline as a plot (matplotlib, inline SVG): one row per IKE SA and per BGP session,
bars while they were up; a row per probe with its outages in red; faults as shaded bands
across every row, from applied to cleared.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass, field

from matplotlib import rc_context
from matplotlib.figure import Figure

from lab.observe.events import Event

# Not the diagram's colours: a screenshot test tells the plot from the diagram by them.
SA_UP, BGP_UP, OUTAGE, FAULT = "#43a047", "#1565c0", "#e53935", "#f9a825"


@dataclass
class Row:
    label: str
    colour: str
    spans: list[tuple[float, float]] = field(default_factory=list)
    since: float | None = None  # up (or in outage) since, not yet closed

    def begin(self, t: float) -> None:
        if self.since is None:
            self.since = t

    def end(self, t: float) -> None:
        if self.since is not None:
            self.spans.append((self.since, t))
            self.since = None


@dataclass
class Timeline:
    t0: float
    t1: float
    rows: list[Row]
    faults: list[tuple[float, float, str]]  # start, end, label


def timeline(events: Iterable[Event], until: float | None = None) -> Timeline:
    """Spans (seconds since the first event) from the events, in the order rows first appear."""
    events = sorted(events, key=lambda e: e.mono)
    if not events:
        return Timeline(0.0, 1.0, [], [])
    t0 = events[0].mono
    t1 = max(events[-1].mono, until if until is not None else 0.0) - t0
    rows: dict[tuple, Row] = {}
    faults: dict[object, tuple[float, str]] = {}
    fault_spans = []

    def row(key: tuple, label: str, colour: str) -> Row:
        return rows.setdefault(key, Row(label, colour))

    for e in events:
        t = e.mono - t0
        if e.kind in ("ike-up", "ike-down"):
            r = row(("ike", e.tunnel, e.node), f"{e.tunnel} IKE @{e.node}", SA_UP)
            r.begin(t) if e.kind == "ike-up" else r.end(t)
        elif e.kind == "bgp" and e.data.get("state") in ("Up", "Down"):
            label = f"{e.tunnel or e.data.get('peer')} BGP @{e.node}"
            r = row(("bgp", e.tunnel or e.data.get("peer"), e.node), label, BGP_UP)
            r.begin(t) if e.data["state"] == "Up" else r.end(t)
        elif e.kind in ("outage", "recovered"):
            where = e.text.split(":", 1)[0]
            r = row(("probe", where), f"probe {where}", OUTAGE)
            r.begin(t) if e.kind == "outage" else r.end(t)
        elif e.kind == "fault" and "id" in e.data:
            if e.data.get("applied"):
                faults[e.data["id"]] = (t, str(e.data.get("fault", "fault")))
            elif e.data["id"] in faults:
                start, label = faults.pop(e.data["id"])
                fault_spans.append((start, t, label))
    for r in rows.values():
        r.end(t1)  # still up (or still out) when the record was taken
    fault_spans += [(start, t1, label) for start, label in faults.values()]
    # SAs, then BGP sessions, then probes; each by tunnel, then node.
    order = sorted(rows, key=lambda k: (("ike", "bgp", "probe").index(k[0]), *map(str, k[1:])))
    return Timeline(0.0, max(t1, 1.0), [rows[k] for k in order], fault_spans)


def svg(events: Iterable[Event], until: float | None = None) -> str:
    """The plot as an ``<svg>`` element (text kept as text: searchable, smaller)."""
    tl = timeline(events, until)
    height = 1.0 + 0.32 * max(len(tl.rows), 1)
    fig = Figure(figsize=(10, height), layout="constrained")
    ax = fig.add_subplot()
    for start, end, label in tl.faults:
        ax.axvspan(start, end, color=FAULT, alpha=0.25, lw=0)
        ax.annotate(label, (start, 1.0), xycoords=("data", "axes fraction"), fontsize=7,
                    va="bottom", color="#8d6e00")  # fmt: skip
    for i, r in enumerate(tl.rows):
        ax.broken_barh([(a, max(b - a, 0.02)) for a, b in r.spans], (i - 0.35, 0.7), color=r.colour)
    ax.set_yticks(range(len(tl.rows)), [r.label for r in tl.rows], fontsize=8)
    ax.set_ylim(max(len(tl.rows), 1) - 0.5, -0.5)
    ax.set_xlim(tl.t0, tl.t1)
    ax.set_xlabel("seconds since the first event", fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="x", alpha=0.3)
    buf = io.StringIO()
    with rc_context({"svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.find("<svg") :]
