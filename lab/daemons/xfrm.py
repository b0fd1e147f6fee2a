"""XFRM interfaces: route-based tunnels on the kernel data plane.

One interface per tunnel, ``xfrm<if_id>``, bound to the tunnel's SAs and policies by
its if_id (swanctl's ``if_id_in``/``if_id_out``), carrying the tunnel's inside address.
What the routing table sends into it is encrypted into that tunnel; BGP runs over it.
The userspace data plane has no if_id: there every tunnel shares ipsec0.
"""

from __future__ import annotations

import shlex

from lab.topology.model import Lab

PREFIX = "xfrm"


def name(if_id: int) -> str:
    return f"{PREFIX}{if_id}"


def interfaces(lab: Lab, node: str) -> dict[str, str]:
    """Interface name -> tunnel, for the node's route-based tunnels."""
    out = {}
    for t in lab.tunnels_of(node):
        local = t.side(node)[0]
        if local.if_id is not None:
            out[name(local.if_id)] = t.name
    return out


def setup_commands(lab: Lab, node: str) -> list[str]:
    """Shell commands that create the node's XFRM interfaces and put the inside addresses
    on them (run once, before charon installs the SAs)."""
    by_address = {i.address.ip: i.name for i in lab.nodes[node].interfaces}
    steps = []
    for t in lab.tunnels_of(node):
        local = t.side(node)[0]
        if local.if_id is None:
            continue
        dev = name(local.if_id)
        # Bound to the outside interface (dev): the encrypted packets leave from there.
        steps.append(
            f"ip link add {dev} type xfrm dev {by_address[local.address]} if_id {local.if_id}"
        )
        steps.append(shlex.join(["ip", "link", "set", dev, "alias", f"tunnel {t.name}", "up"]))
        if local.inside is not None:
            steps.append(f"ip addr replace {local.inside} dev {dev}")
    return steps
