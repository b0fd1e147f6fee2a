"""What "converged" means, as checks that list what is not there yet.

Each check returns a list of human-readable problems; empty means it holds. The
convergence wait polls them all and, on timeout, prints the last problems with logs.
"""

from __future__ import annotations

import json
from ipaddress import IPv4Network
from typing import TYPE_CHECKING

from lab.render.swanctl import connection

if TYPE_CHECKING:
    from lab.deploy import RunningLab


def tunnel_problems(running: RunningLab) -> list[str]:
    problems = []
    for t in running.lab.tunnels.values():
        for ep in (t.provider, t.customer):
            sa = running.charon(ep.node).ike_sas().get(t.name)
            if sa is None:
                problems.append(f"{t.name}: no IKE SA on {ep.node}")
                continue
            if sa.get("state") != "ESTABLISHED":
                problems.append(f"{t.name}: IKE SA on {ep.node} is {sa.get('state')}")
                continue
            installed = {c.get("name") for c in sa.get("child-sas", {}).values()
                         if c.get("state") == "INSTALLED"}
            for child in connection(t, ep.node)["children"]:
                if child not in installed:
                    problems.append(f"{t.name}: CHILD_SA {child} not installed on {ep.node}")
    return problems


def bgp_problems(running: RunningLab) -> list[str]:
    problems = []
    for node in running.lab.nodes.values():
        if node.bgp is None:
            continue
        peers = running.frr(node.name).bgp_peers()
        for n in node.bgp.neighbors:
            peer = peers.get(str(n.address), {})
            label = f"tunnel {n.tunnel}" if n.tunnel else "iBGP"
            if peer.get("state") != "Established":
                problems.append(f"{node.name}: BGP {n.address} ({label}) is "
                                f"{peer.get('state', 'not configured')}")
            elif n.tunnel and not peer.get("pfxRcd"):
                problems.append(f"{node.name}: BGP {n.address} ({label}) received no prefixes")
    return problems


def expected_routes(running: RunningLab, node: str) -> set[IPv4Network]:
    """Remote subnets this node must have a route to once the lab has converged."""
    lab = running.lab
    site = lab.nodes[node].site
    want: set[IPv4Network] = set()
    for t in lab.tunnels.values():
        for local, remote in ((t.provider, t.customer), (t.customer, t.provider)):
            if local.node == node or (lab.nodes[node].role == "router"
                                      and lab.nodes[local.node].site == site):
                want |= {n for n in remote.ts if not (remote.inside and n.prefixlen == 32)}
    return want


def kernel_routes(running: RunningLab, node: str) -> set[str]:
    proc = running.runtime.run(node, ["ip", "-j", "route", "show", "table", "main"], check=False)
    try:
        return {r["dst"] for r in json.loads(proc.stdout or "[]")}
    except json.JSONDecodeError:
        return set()


def route_problems(running: RunningLab) -> list[str]:
    problems = []
    for node in running.lab.nodes.values():
        want = expected_routes(running, node.name)
        if not want:
            continue
        have = kernel_routes(running, node.name)
        problems += [f"{node.name}: no route to {net}" for net in sorted(want)
                     if str(net) not in have]
    return problems


def convergence_problems(running: RunningLab) -> list[str]:
    """Tunnels first: BGP and routes cannot hold before the SAs do."""
    return tunnel_problems(running) or bgp_problems(running) or route_problems(running)
