"""Fail a tunnel one way or another under probe traffic, measure the outage, restore it.

Shared by the failover scenarios and ``bench/failover.py``, so both measure the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from lab.core.waits import wait_until
from lab.observe.convergence import convergence_problems
from lab.ops import faults
from lab.ops.probe import Probe, ProbeResult
from lab.ops.traffic import hosts_behind, packets
from lab.session.handle import RunningLab
from lab.topology.model import Tunnel
from lab.topology.timers import Bound, failover_bound


def _transit_interface(running: RunningLab, t: Tunnel) -> str:
    node = running.lab.nodes[t.provider.node]
    return next(i.name for i in node.interfaces if i.address.ip == t.provider.address)


# How a tunnel fails -> the fault that does it (on the provider's end of the tunnel).
FAILURES: dict[str, Callable[[RunningLab, Tunnel], tuple[str, dict]]] = {
    "terminate": lambda r, t: ("terminate", {"tunnel": t.name, "what": "ike"}),
    "kill-charon": lambda r, t: ("kill", {"node": t.provider.node, "daemon": "charon"}),
    "block": lambda r, t: ("block", {"a": t.provider.node, "b": t.customer.node, "what": "all"}),
    "link-down": lambda r, t: (
        "link-down",
        {"node": t.provider.node, "interface": _transit_interface(r, t)},
    ),
    # ESP towards the customer vanishes, IKE (so DPD) still passes: a silent black hole.
    "black-hole": lambda r, t: (
        "block",
        {"a": t.provider.node, "b": t.customer.node, "what": "esp", "both_ways": False},
    ),
}


@dataclass(frozen=True)
class Measurement:
    tunnel: str
    failure: str
    fault: str
    bound: Bound
    result: ProbeResult

    def line(self) -> str:
        return f"{self.tunnel} {self.failure}: {self.result.summary()}; bound {self.bound}"


def probe_pair(running: RunningLab, tunnel: str) -> tuple[str, str]:
    """(provider host, customer host address) on either side of ``tunnel``."""
    t = running.lab.tunnels[tunnel]
    src = hosts_behind(running.lab, t.provider)[0][0]
    dst = hosts_behind(running.lab, t.customer)[0][1]
    return src, str(dst)


def measure(
    running: RunningLab, tunnel: str, failure: str, *, after: float = 3.0, unbounded: float = 10.0
) -> Measurement:
    """Probe provider host -> customer host, fail ``tunnel`` once traffic flows, and keep
    probing until the bound (plus ``after`` seconds) has passed; the fault stays active."""
    t = running.lab.tunnels[tunnel]
    bound = failover_bound(running.lab, tunnel, failure, running.dataplane(t.provider.node))
    seconds = (bound.seconds if bound.seconds is not None else unbounded) + after
    kind, params = FAILURES[failure](running, t)
    src, dst = probe_pair(running, tunnel)
    with Probe(running, src, dst, seconds + 1.0) as probe:
        start = _delivered_total(running)
        wait_until(
            lambda: _delivered_total(running) - start,
            lambda n: n >= 20,
            timeout=5,
            interval=0.05,
            what=f"probe traffic {src} -> {dst} through the tunnels",
        )
        marked = probe.mark()
        fault = faults.inject(running, kind, **params)
        # The window is the bound (plus ``after``) from the fault on; the probe's count
        # leaves room for the wait above, which is not used again at its end.
        result = probe.finish(until=marked + seconds)
    return Measurement(tunnel, failure, fault.description, bound, result)


def _delivered_total(running: RunningLab) -> int:
    return sum(pkts_in for pkts_in, _ in packets(running).values())


def restore(running: RunningLab, timeout: float = 30) -> float:
    """Clear every fault and wait until the lab has converged again; seconds it took."""
    t0 = time.monotonic()
    faults.clear(running)
    wait_until(
        lambda: convergence_problems(running),
        lambda p: not p,
        timeout=timeout,
        interval=0.1,
        what=f"lab {running.name} to re-converge after the faults",
    )
    return time.monotonic() - t0
