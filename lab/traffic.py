"""Traffic through the tunnels, and the SA counters that prove which tunnel carried it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import TYPE_CHECKING

from lab.topology.model import Endpoint, Lab

if TYPE_CHECKING:
    from lab.deploy import RunningLab


@dataclass(frozen=True)
class PingResult:
    sent: int
    received: int
    output: str

    @property
    def loss(self) -> float:
        return 1 - self.received / self.sent if self.sent else 1.0


def ping(running: RunningLab, node: str, dst: IPv4Address | str, count: int = 5,
         interval: float = 0.05, wait: float = 1.0) -> PingResult:
    proc = running.exec(node, ["ping", "-n", "-q", "-c", str(count), "-i", str(interval),
                               "-W", str(wait), str(dst)])
    m = re.search(r"(\d+) packets transmitted, (\d+) received", proc.stdout)
    if not m:
        return PingResult(count, 0, proc.stdout + proc.stderr)
    return PingResult(int(m.group(1)), int(m.group(2)), proc.stdout)


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
    out = {}
    for t in running.lab.tunnels.values():
        for ep in (t.provider, t.customer):
            sa = running.charon(ep.node).ike_sas().get(t.name, {})
            children = sa.get("child-sas", {}).values()
            out[(t.name, ep.node)] = (sum(int(c.get("packets-in", 0)) for c in children),
                                      sum(int(c.get("packets-out", 0)) for c in children))
    return out


COUNT_TABLE = "vpnlab_count"  # the counters' own table: the lab's tables stay untouched


def count(running: RunningLab, node: str, rules: dict[str, str],
          hook: str = "prerouting") -> None:
    """Count packets inside ``node``: counter name -> nftables match (``ip saddr 10.0.0.0/8``),
    at ``hook`` before conntrack and NAT (priority raw), so addresses are as they arrived.
    Read them with ``counted``; a name is used once per node."""
    script = [f"table ip {COUNT_TABLE} {{",
              # Prefixed: a name like "icmp" is an nftables keyword.
              *(f"    counter n_{name} {{ }}" for name in rules),
              f"    chain {hook} {{",
              f"        type filter hook {hook} priority raw; policy accept;",
              *(f'        {match} counter name "n_{name}"' for name, match in rules.items()),
              "    }", "}"]
    running.runtime.run(node, ["nft", "-f", "-"], input="\n".join(script) + "\n")


def counted(running: RunningLab, node: str) -> dict[str, int]:
    """Packets per counter that ``count`` set up in ``node``."""
    proc = running.runtime.run(node, ["nft", "-j", "list", "counters", "table", "ip",
                                      COUNT_TABLE])
    return {o["counter"]["name"].removeprefix("n_"): int(o["counter"]["packets"])
            for o in json.loads(proc.stdout)["nftables"] if "counter" in o}
