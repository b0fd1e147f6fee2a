"""What "converged" means, as checks that list what is not there yet.

Each check returns the problems it sees; an empty list means it holds. The bring-up polls
them and, on timeout, explains the last problems with the daemons' own logs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from ipaddress import IPv4Network
from typing import Literal

from lab.core.parallel import by_key, each
from lab.session.handle import RunningLab
from lab.topology.model import Lab


@dataclass(frozen=True)
class Problem:
    kind: Literal["ike", "bgp", "route"]
    node: str
    text: str
    tunnel: str | None = None  # the tunnel it belongs to, where it belongs to one

    def __str__(self) -> str:
        return f"{self.tunnel}: {self.text}" if self.tunnel else f"{self.node}: {self.text}"


def tunnel_problems(running: RunningLab) -> list[Problem]:
    gateways = sorted(
        {ep.node for t in running.lab.tunnels.values() for ep in (t.provider, t.customer)}
    )
    return sa_problems(running.lab, by_key(lambda n: running.charon(n).ike_sas(), gateways))


def tunnel_sa(lab: Lab, tunnel: str, node: str, node_sas: dict[str, dict]) -> dict | None:
    """The tunnel's IKE SA among a gateway's SAs (by connection name): vpnlab names its
    connections after the tunnels; a gateway running a supplied swanctl.conf names them as
    its author did, so there the SA is the one with the tunnel's peer."""
    if tunnel in node_sas or "swanctl.conf" not in lab.nodes[node].supplied:
        return node_sas.get(tunnel)
    peer = lab.tunnels[tunnel].side(node)[1]
    for sa in node_sas.values():
        if sa.get("remote-host") in (str(peer.public_address), str(peer.address)):
            return sa
    return None


def sa_problems(lab: Lab, sas: dict[str, dict[str, dict]]) -> list[Problem]:
    """Pure: what is missing, given each gateway's IKE SAs by connection name."""
    problems = []
    for t in lab.tunnels.values():
        for ep in (t.provider, t.customer):
            sa = tunnel_sa(lab, t.name, ep.node, sas[ep.node])
            if sa is None:
                problems.append(Problem("ike", ep.node, f"no IKE SA on {ep.node}", t.name))
                continue
            if sa.get("state") != "ESTABLISHED":
                problems.append(
                    Problem("ike", ep.node, f"IKE SA on {ep.node} is {sa.get('state')}", t.name)
                )
                continue
            installed = {
                c.get("name")
                for c in sa.get("child-sas", {}).values()
                if c.get("state") == "INSTALLED"
            }
            if "swanctl.conf" in lab.nodes[ep.node].supplied:
                # CHILD_SAs named by the file's author: count them.
                want = len(t.child_sas(ep.node))
                if len(installed) < want:
                    problems.append(
                        Problem(
                            "ike",
                            ep.node,
                            f"{len(installed)} of {want} CHILD_SAs installed on {ep.node}",
                            t.name,
                        )
                    )
                continue
            problems += [
                Problem("ike", ep.node, f"CHILD_SA {c.name} not installed on {ep.node}", t.name)
                for c in t.child_sas(ep.node)
                if c.name not in installed
            ]
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
        problems += [
            Problem(
                "ike",
                node,
                f"tunnels {', '.join(sorted(tunnels))} share reqid {reqid} on {node}",
                min(tunnels),
            )
            for reqid, tunnels in sorted(owners.items())
            if len(tunnels) > 1
        ]
    return problems


def bgp_problems(running: RunningLab) -> list[Problem]:
    problems = []
    speakers = [n.name for n in running.lab.nodes.values() if n.bgp is not None]
    all_peers = by_key(lambda n: running.frr(n).bgp_peers(), speakers)
    for name in speakers:
        node = running.lab.nodes[name]
        peers = all_peers[name]
        for n in node.bgp.neighbors:
            peer = peers.get(str(n.address), {})
            label = f"tunnel {n.tunnel}" if n.tunnel else "iBGP"
            if peer.get("state") != "Established":
                problems.append(
                    Problem(
                        "bgp",
                        node.name,
                        f"BGP {n.address} ({label}) is {peer.get('state', 'not configured')}",
                        n.tunnel,
                    )
                )
            elif n.tunnel and not peer.get("pfxRcd"):
                problems.append(
                    Problem(
                        "bgp",
                        node.name,
                        f"BGP {n.address} ({label}) received no prefixes",
                        n.tunnel,
                    )
                )
    return problems


def expected_routes(running: RunningLab, node: str) -> set[IPv4Network]:
    """Remote subnets this node must have a route to once the lab has converged."""
    lab = running.lab
    site = lab.nodes[node].site
    want: set[IPv4Network] = set()
    for t in lab.tunnels.values():
        for local, remote in ((t.provider, t.customer), (t.customer, t.provider)):
            if local.node == node or (
                lab.nodes[node].role == "router" and lab.nodes[local.node].site == site
            ):
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
    have = by_key(lambda n: kernel_routes(running, n), wanted)
    return [
        Problem("route", n, f"no route to {net}")
        for n, want in wanted.items()
        for net in sorted(want)
        if str(net) not in have[n]
    ]


def convergence_problems(running: RunningLab, ignore: set[str] = frozenset()) -> list[Problem]:
    """Tunnels first: BGP and routes cannot hold before the SAs do. BGP and routes are
    read side by side (on Docker each read is an exec), and reported in that order.

    ``ignore``: tunnels known not to come up. Their own problems are left out, and so are
    missing routes (a consequence of them); the rest of the lab is still checked.
    """
    problems = [p for p in tunnel_problems(running) if p.tunnel not in ignore]
    if problems:
        return problems
    checks = [bgp_problems] if ignore else [bgp_problems, route_problems]
    for found in each(lambda check: check(running), checks):
        if kept := [p for p in found if p.tunnel not in ignore]:
            return kept
    return []
