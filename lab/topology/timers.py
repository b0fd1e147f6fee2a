"""How long an outage may last, derived from the timers a lab is configured with.

A failover scenario asserts its measured outage against these bounds, and prints both, so
a change of DPD, retransmission or BGP timers moves the expectation with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.topology.choices import KERNEL, USERSPACE
from lab.topology.model import Endpoint, Lab, Tunnel

# What no timer accounts for: DPD and BGP scheduling granularity, the iBGP update to the
# VPC router, route installation, and the probe's own 20 ms spacing.
MARGIN = 1.5
CONVERGE_TIMEOUT = 30.0  # seconds a lab may take from its daemons' start to converged


@dataclass(frozen=True)
class Bound:
    seconds: float | None  # None: no timer ends this outage
    reason: str

    def holds(self, outage: float) -> bool:
        return self.seconds is None or outage <= self.seconds

    def __str__(self) -> str:
        limit = "unbounded" if self.seconds is None else f"{self.seconds:.2f}s"
        return f"{limit} ({self.reason})"


def dead_peer_detection(lab: Lab, ep: Endpoint) -> float | None:
    """Seconds until ``ep`` declares a silent peer dead; None when DPD is off.

    IKEv2 sends a DPD request after ``dpd_delay`` without inbound traffic and gives up
    after the retransmission schedule; IKEv1 waits ``dpd_timeout`` for an answer.
    """
    if ep.dpd.delay == 0:
        return None
    wait = lab.retransmit.give_up_after() if ep.ike == 2 else ep.dpd.timeout
    return ep.dpd.delay + wait


def _dpd_bound(lab: Lab, t: Tunnel, why: str) -> Bound:
    sides = [dead_peer_detection(lab, ep) for ep in (t.provider, t.customer)]
    if None in sides:
        return Bound(None, f"{why}; DPD is off on one side, nothing detects it")
    worst = max(s for s in sides if s is not None)
    how = (
        f"dpd_delay {t.customer.dpd.delay}s + retransmits {lab.retransmit.give_up_after():.2f}s"
        if t.customer.ike == 2
        else f"dpd_delay {t.customer.dpd.delay}s + dpd_timeout {t.customer.dpd.timeout}s"
    )
    if t.routing == "bgp" and t.hold > worst:
        worst, how = t.hold, f"BGP hold {t.hold}s"
    return Bound(worst + MARGIN, f"{why}: {how} + {MARGIN}s margin")


def _hold_bound(t: Tunnel, why: str) -> Bound:
    return Bound(t.hold + MARGIN, f"{why} {t.hold}s + {MARGIN}s margin")


def failover_bound(lab: Lab, tunnel: str, fault: str, plane: str = USERSPACE) -> Bound:
    """The longest outage a failure of ``tunnel`` may cause, by the way it fails, with the
    provider's gateway on data plane ``plane``."""
    t = lab.tunnels[tunnel]
    if fault == "kill-charon" and plane == KERNEL:
        # The SAs and policies live in the kernel, not in charon: they go on carrying
        # traffic (both ends' DPD sees it flow), so nothing fails over.
        return Bound(MARGIN, f"the kernel's SAs outlive charon: no failover, {MARGIN}s")
    if fault == "terminate":
        if t.routing == "bgp":
            # Both ends drop the SA at once, but the BGP route over it stays valid (the
            # inside /30 is still connected) until the hold timer expires.
            return _hold_bound(t, "the SA is deleted at once; BGP over it holds on for hold")
        return Bound(
            MARGIN,
            "the SA is deleted with a DELETE both ends receive and its "
            f"routes go with it: only rerouting, {MARGIN}s",
        )
    if fault in ("kill-charon", "block", "link-down"):
        return _dpd_bound(lab, t, "the peer falls silent, dead peer detection must notice")
    if fault == "black-hole":
        if t.routing == "bgp":
            return _hold_bound(t, "DPD still gets answers; only the BGP hold timer ends it:")
        return Bound(None, "DPD still gets answers and static routing has no other timer")
    raise ValueError(f"no bound known for fault {fault!r}")
