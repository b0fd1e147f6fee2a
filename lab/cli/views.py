"""How the command line shows things: the status tables and one-line summaries (rich)."""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

from lab.cli.common import out
from lab.topology.model import Lab

if TYPE_CHECKING:  # annotations only: the status module loads the engine (vici)
    from lab.observe.status import LabStatus

GOOD_STATES = {"ESTABLISHED", "INSTALLED", "Established"}
LISTED_TUNNELS = 4  # a validation line names at most this many tunnels


def lab_summary(lab: Lab) -> str:
    """One line for a validated lab; a large lab's tunnels are counted, not listed."""
    kinds = Counter(f"{t.routing}/IKEv{t.provider.ike}" for t in lab.tunnels.values())
    if len(lab.tunnels) <= LISTED_TUNNELS:
        tunnels = ", ".join(
            f"{t.name}: {t.routing}/IKEv{t.provider.ike}" for t in lab.tunnels.values()
        )
    else:
        tunnels = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
    sites = len({n.site for n in lab.nodes.values()})
    return (
        f"lab [bold]{lab.name}[/], profile {lab.profile}, {sites} sites, "
        f"{len(lab.nodes)} nodes, {len(lab.tunnels)} tunnels ({tunnels})"
    )


def print_status(data: LabStatus) -> None:
    planes = sorted(set(data.dataplane.values()))
    plane = (
        planes[0] if len(planes) == 1 else ", ".join(f"{n} {p}" for n, p in data.dataplane.items())
    )
    out.print(
        f"lab [bold]{data.lab}[/]  runtime {data.runtime}  "
        f"data plane {plane or '-'} "
        f"({'auto' if data.dataplane_asked == 'auto' else 'asked for'})  "
        f"profile {data.profile}"
    )
    t = Table(title="tunnels", title_justify="left")
    for col in (
        "tunnel",
        "node",
        "IKE",
        "IKE proposal",
        "CHILD",
        "ESP proposal",
        "pkts in/out",
        "BGP",
    ):
        t.add_column(col)
    for tun in data.tunnels:
        for side_name, s in (("provider", tun.provider), ("customer", tun.customer)):
            for i, c in enumerate(s.children or [None]):
                first = i == 0
                t.add_row(
                    f"{tun.name} {tun.routing} {tun.mode}"
                    if first and side_name == "provider"
                    else "",
                    f"{s.node} ({side_name[0]})" if first else "",
                    f"{_state(s.ike_state)} v{s.ike_version}" if first else "",
                    (s.ike_proposal or "-") if first else "",
                    _state(c.state) if c else "-",
                    c.esp_proposal if c else "-",
                    f"{c.packets_in}/{c.packets_out}" if c else "0/0",
                    f"{_state(s.bgp.state)} {s.bgp.prefixes_received} pfx"
                    if s.bgp and first
                    else "",
                )
    out.print(t)
    n = Table(title="nodes", title_justify="left")
    for col in ("node", "site", "role", "addresses", "daemons"):
        n.add_column(col)
    for node in data.nodes:
        daemons = (
            " ".join(
                f"{d}:{'[green]up[/]' if ok else '[red]DOWN[/]'}" for d, ok in node.daemons.items()
            )
            or "-"
        )
        n.add_row(node.name, node.site, node.role, " ".join(node.addresses), daemons)
    out.print(n)
    for f in data.faults:
        out.print(
            f"[magenta]fault {f.id}[/] {f.kind}: {escape(f.description)} "
            f"(since {clock(f.started)}, {f.age_s:.0f}s)",
            highlight=False,
        )
    for d in data.diagnosis:
        color = "red" if d.severity == "error" else "yellow"
        out.print(f"[{color}]{escape(d.message)}[/]", highlight=False, soft_wrap=True)


def clock(epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch))


def _state(value: str) -> str:
    return f"[green]{value}[/]" if value in GOOD_STATES else f"[yellow]{value}[/]"
