"""The topology as a picture: Graphviz (laid out by ``dot``: SVG, PNG) and Mermaid text.

One cluster per site, one small node per segment with each member's address on its edge,
and each tunnel as a dashed edge between its gateways; given a running lab's status, a
tunnel is green when both sides have it established (and BGP up, where it is BGP-routed),
amber when partly up, red when down.
"""

from __future__ import annotations

from pathlib import Path

import graphviz

from lab.core.errors import InputError
from lab.observe.status import LabStatus, TunnelStatus
from lab.topology.model import Lab

SHAPES = {
    "vpn-gateway": "hexagon",
    "router": "ellipse",
    "nat-gateway": "octagon",
    "host": "box",
    "internet-host": "box",
}
UP, PARTLY, DOWN, UNKNOWN = "#2e7d32", "#f9a825", "#c62828", "#555555"
FORMATS = ("svg", "png", "dot", "mmd")


def tunnel_state(t: TunnelStatus) -> str:
    """up, partly or down, from both sides of a tunnel's status."""
    sides = (t.provider, t.customer)
    established = [
        s.ike_state == "ESTABLISHED" and all(c.state == "INSTALLED" for c in s.children)
        for s in sides
    ]
    bgp = [s.bgp is None or s.bgp.state == "Established" for s in sides]
    if all(established) and all(bgp):
        return "up"
    return "partly" if any(established) else "down"


COLOURS = {"up": UP, "partly": PARTLY, "down": DOWN}


def _states(status: LabStatus | None) -> dict[str, str]:
    return {t.name: tunnel_state(t) for t in status.tunnels} if status else {}


def dot(lab: Lab, status: LabStatus | None = None) -> graphviz.Graph:
    g = graphviz.Graph(lab.name, graph_attr={"rankdir": "LR", "fontname": "Helvetica"})
    g.attr("node", fontname="Helvetica", fontsize="10")
    g.attr("edge", fontname="Helvetica", fontsize="9")
    shared = _shared_segments(lab)
    for seg, net in lab.segments.items():
        if seg in shared:
            g.node(f"seg_{seg}", f"{seg}\n{net}", shape="ellipse", style="dashed")
    for site in dict.fromkeys(n.site for n in lab.nodes.values()):
        members = [n for n in lab.nodes.values() if n.site == site]
        kind = members[0].site_kind
        label = f"{site} ({lab.profile})" if kind == "provider" else site
        with g.subgraph(name=f"cluster_{site}") as c:
            c.attr(
                label=label, style="rounded", color="#1565c0" if kind == "provider" else "#6a1b9a"
            )
            for seg in {i.segment for n in members for i in n.interfaces} - shared:
                c.node(f"seg_{seg}", f"{seg}\n{lab.segments[seg]}", shape="point", xlabel=seg)
            for n in members:
                c.node(n.name, f"{n.name}\n{n.role}", shape=SHAPES.get(n.role, "box"))
    for n in lab.nodes.values():
        for i in n.interfaces:
            g.edge(n.name, f"seg_{i.segment}", label=str(i.address.ip), color="#777777")
    states = _states(status)
    for t in lab.tunnels.values():
        state = states.get(t.name)
        colour = COLOURS.get(state or "", UNKNOWN)
        label = f"{t.name}\n{t.routing}, IKEv{t.provider.ike}" + (f"\n{state}" if state else "")
        g.edge(
            t.provider.node,
            t.customer.node,
            label=label,
            style="dashed",
            penwidth="2",
            color=colour,
            fontcolor=colour,
            constraint="false",
        )
    return g


def _shared_segments(lab: Lab) -> set[str]:
    """Segments more than one site uses (the internet): drawn outside every cluster."""
    sites: dict[str, set[str]] = {}
    for n in lab.nodes.values():
        for i in n.interfaces:
            sites.setdefault(i.segment, set()).add(n.site)
    return {seg for seg, s in sites.items() if len(s) > 1}


def mermaid(lab: Lab, status: LabStatus | None = None) -> str:
    """A Mermaid flowchart of the same picture (for Markdown in a ticket or a wiki)."""
    ids = {name: f"n{i}" for i, name in enumerate(lab.nodes)}
    segs = {name: f"s{i}" for i, name in enumerate(lab.segments)}
    shared = _shared_segments(lab)
    lines = ["flowchart LR"]
    for seg in shared:
        lines.append(f'  {segs[seg]}(("{seg}<br/>{lab.segments[seg]}"))')
    for site in dict.fromkeys(n.site for n in lab.nodes.values()):
        lines.append(f'  subgraph {site}["{site}"]')
        members = [n for n in lab.nodes.values() if n.site == site]
        for seg in sorted({i.segment for n in members for i in n.interfaces} - shared):
            lines.append(f'    {segs[seg]}["{seg}<br/>{lab.segments[seg]}"]')
        for n in members:
            open_, close = ("{{", "}}") if n.role == "vpn-gateway" else ("[", "]")
            lines.append(f'    {ids[n.name]}{open_}"{n.name}<br/>{n.role}"{close}')
        lines.append("  end")
    for n in lab.nodes.values():
        for i in n.interfaces:
            lines.append(f'  {ids[n.name]} ---|"{i.address.ip}"| {segs[i.segment]}')
    states = _states(status)
    styles = []
    for k, t in enumerate(lab.tunnels.values()):
        state = states.get(t.name)
        label = f"{t.name} {t.routing}" + (f" {state}" if state else "")
        lines.append(f'  {ids[t.provider.node]} -.-|"{label}"| {ids[t.customer.node]}')
        if state:
            edge = sum(len(n.interfaces) for n in lab.nodes.values()) + k
            styles.append(f"  linkStyle {edge} stroke:{COLOURS[state]},stroke-width:2px")
    return "\n".join(lines + styles) + "\n"


def write(lab: Lab, out: Path, status: LabStatus | None = None) -> Path:
    """The picture in the format ``out``'s suffix names (.svg, .png, .dot, .mmd)."""
    fmt = out.suffix.lstrip(".")
    if fmt not in FORMATS:
        raise InputError(
            "-o", f"{out.name}: the format is the suffix, one of .{', .'.join(FORMATS)}"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "mmd":
        out.write_text(mermaid(lab, status))
    elif fmt == "dot":
        out.write_text(dot(lab, status).source)
    else:
        out.write_bytes(dot(lab, status).pipe(format=fmt))
    return out
