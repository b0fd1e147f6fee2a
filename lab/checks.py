"""What "converged" means, as checks that list what is not there yet.

Each check returns the problems it sees; an empty list means it holds. The convergence
wait polls them and, on timeout, explains the last problems with the daemons' own logs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from ipaddress import IPv4Network
from typing import TYPE_CHECKING, Literal, TypeVar

from lab.render.swanctl import connection

if TYPE_CHECKING:
    from lab.deploy import RunningLab

T = TypeVar("T")


@dataclass(frozen=True)
class Problem:
    kind: Literal["ike", "bgp", "route"]
    node: str
    text: str
    tunnel: str | None = None

    def __str__(self) -> str:
        return f"{self.tunnel}: {self.text}" if self.tunnel else f"{self.node}: {self.text}"


def tunnel_problems(running: RunningLab) -> list[Problem]:
    problems = []
    gateways = sorted({ep.node for t in running.lab.tunnels.values()
                       for ep in (t.provider, t.customer)})
    sas = _read_all(lambda n: running.charon(n).ike_sas(), gateways)
    for t in running.lab.tunnels.values():
        for ep in (t.provider, t.customer):
            sa = sas[ep.node].get(t.name)
            if sa is None:
                problems.append(Problem("ike", ep.node, f"no IKE SA on {ep.node}", t.name))
                continue
            if sa.get("state") != "ESTABLISHED":
                problems.append(Problem("ike", ep.node, f"IKE SA on {ep.node} is "
                                        f"{sa.get('state')}", t.name))
                continue
            installed = {c.get("name") for c in sa.get("child-sas", {}).values()
                         if c.get("state") == "INSTALLED"}
            problems += [Problem("ike", ep.node, f"CHILD_SA {child} not installed on {ep.node}",
                                 t.name)
                         for child in connection(t, ep.node)["children"] if child not in installed]
    return problems + shared_reqids(sas)


def shared_reqids(sas: dict[str, dict[str, dict]]) -> list[Problem]:
    """CHILD_SAs of different tunnels on one node with one reqid: the userspace data plane
    sends both tunnels' traffic out in one of them, and the other tunnel is dead."""
    problems = []
    for node, by_tunnel in sas.items():
        owners: dict[str, set[str]] = {}
        for tunnel, sa in by_tunnel.items():
            for child in sa.get("child-sas", {}).values():
                if child.get("state") == "INSTALLED" and child.get("reqid"):
                    owners.setdefault(child["reqid"], set()).add(tunnel)
        problems += [Problem("ike", node, f"tunnels {', '.join(sorted(tunnels))} share reqid "
                             f"{reqid} on {node}", min(tunnels))
                     for reqid, tunnels in sorted(owners.items()) if len(tunnels) > 1]
    return problems


def _read_all(read: Callable[[str], T], nodes: list[str]) -> dict[str, T]:
    """Read every node at once: on Docker each read is an exec round trip."""
    with ThreadPoolExecutor(6) as pool:
        return dict(zip(nodes, pool.map(read, nodes), strict=True))


def bgp_problems(running: RunningLab) -> list[Problem]:
    problems = []
    speakers = [n.name for n in running.lab.nodes.values() if n.bgp is not None]
    all_peers = _read_all(lambda n: running.frr(n).bgp_peers(), speakers)
    for name in speakers:
        node = running.lab.nodes[name]
        peers = all_peers[name]
        for n in node.bgp.neighbors:
            peer = peers.get(str(n.address), {})
            label = f"tunnel {n.tunnel}" if n.tunnel else "iBGP"
            if peer.get("state") != "Established":
                problems.append(Problem("bgp", node.name, f"BGP {n.address} ({label}) is "
                                        f"{peer.get('state', 'not configured')}"))
            elif n.tunnel and not peer.get("pfxRcd"):
                problems.append(Problem("bgp", node.name,
                                        f"BGP {n.address} ({label}) received no prefixes"))
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


def route_problems(running: RunningLab) -> list[Problem]:
    wanted = {n: expected_routes(running, n) for n in running.lab.nodes}
    wanted = {n: want for n, want in wanted.items() if want}
    have = _read_all(lambda n: kernel_routes(running, n), list(wanted))
    return [Problem("route", n, f"no route to {net}") for n, want in wanted.items()
            for net in sorted(want) if str(net) not in have[n]]


def convergence_problems(running: RunningLab) -> list[Problem]:
    """Tunnels first: BGP and routes cannot hold before the SAs do. BGP and routes are
    read side by side (on Docker each read is an exec), and reported in that order."""
    if problems := tunnel_problems(running):
        return problems
    with ThreadPoolExecutor(2) as pool:
        bgp, routes = pool.submit(bgp_problems, running), pool.submit(route_problems, running)
        return bgp.result() or routes.result()
