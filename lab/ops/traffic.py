"""Traffic through the tunnels, and the SA counters that prove which tunnel carried it."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

from lab.core.parallel import by_key
from lab.daemons import nftables
from lab.daemons.nftables import Chain
from lab.observe.convergence import tunnel_sa
from lab.ops.ping import ping_summary, spaced_pings_argv
from lab.session.handle import RunningLab
from lab.topology.model import Endpoint, Lab


@dataclass(frozen=True)
class PingResult:
    sent: int
    received: int
    output: str

    @property
    def loss(self) -> float:
        return 1 - self.received / self.sent if self.sent else 1.0


def ping(
    running: RunningLab,
    node: str,
    dst: IPv4Address | str,
    count: int = 5,
    interval: float = 0.05,
    wait: float = 1.0,
) -> PingResult:
    """``count`` echo requests ``interval`` apart; a reply counts if it arrives within
    ``wait`` of its request (see ``spaced_pings_argv``: not ping -c's shorter tail)."""
    proc = running.exec(node, spaced_pings_argv(dst, count=count, interval=interval, wait=wait))
    summary = ping_summary(proc.stdout)
    if summary is None:
        return PingResult(count, 0, proc.stdout + proc.stderr)
    return PingResult(*summary, proc.stdout)


def hosts_behind(lab: Lab, ep: Endpoint) -> list[tuple[str, IPv4Address]]:
    """(node, address) of the hosts whose address one of the endpoint's selectors covers."""
    out = []
    for node in lab.nodes.values():
        if node.role != "host":
            continue
        for iface in node.interfaces:
            if any(iface.address.ip in net for net in ep.ts):
                out.append((node.name, iface.address.ip))
    return out


def packets(running: RunningLab) -> dict[tuple[str, str], tuple[int, int]]:
    """(tunnel, node) -> (packets in, packets out), summed over the tunnel's CHILD_SAs."""
    sas = by_key(lambda n: running.charon(n).ike_sas(), running.charons)
    out = {}
    for t in running.lab.tunnels.values():
        for ep in (t.provider, t.customer):
            sa = tunnel_sa(running.lab, t.name, ep.node, sas[ep.node]) or {}
            children = sa.get("child-sas", {}).values()
            out[(t.name, ep.node)] = (
                sum(int(c.get("packets-in", 0)) for c in children),
                sum(int(c.get("packets-out", 0)) for c in children),
            )
    return out


def ping_carried(
    running: RunningLab, node: str, dst: IPv4Address | str, count: int = 5
) -> tuple[PingResult, dict[tuple[str, str], tuple[int, int]]]:
    """``ping``, and what each tunnel's gateways counted meanwhile: (tunnel, node) ->
    (packets in, packets out), as ``packets`` gives them. Which tunnel carried the traffic."""
    before = packets(running)
    result = ping(running, node, dst, count)
    after = packets(running)
    grew = {k: (after[k][0] - before[k][0], after[k][1] - before[k][1]) for k in after}
    return result, grew


COUNT_TABLE = "vpnlab_count"  # the counters' own table: the lab's tables stay untouched


def count(running: RunningLab, node: str, rules: dict[str, str], hook: str = "prerouting") -> None:
    """Count packets inside ``node``: counter name -> nftables match (``ip saddr 10.0.0.0/8``),
    at ``hook`` before conntrack and NAT (priority raw), so addresses are as they arrived.
    Read them with ``counted``; a name is used once per node."""
    # Prefixed: a name like "icmp" is an nftables keyword.
    chain = Chain(
        hook, "raw", [f'{match} counter name "n_{name}"' for name, match in rules.items()]
    )
    nftables.add_table(
        running.runtime,
        node,
        COUNT_TABLE,
        {hook: chain},
        family="ip",
        counters=[f"n_{name}" for name in rules],
    )


def counted(running: RunningLab, node: str) -> dict[str, int]:
    """Packets per counter that ``count`` set up in ``node``."""
    values = nftables.counter_values(running.runtime, node, COUNT_TABLE, family="ip")
    return {name.removeprefix("n_"): n for name, n in values.items()}
