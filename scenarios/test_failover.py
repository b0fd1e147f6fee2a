"""Tunnel 1 fails; traffic moves to tunnel 2 within what the configured timers allow.

Runbook, for each two-tunnel Tray lab (static and BGP, IKEv1 and IKEv2) and each way of
failing (SA deleted, endpoint charon killed, IKE+ESP blocked, link down): probe the
provider host -> customer host every 20 ms, fail tunnel 1, and expect the longest outage
under the bound derived from DPD/retransmission/BGP timers, with both directions carried
by tunnel 2 afterwards. Then clear the fault: tunnel 1 re-establishes and, being the
preferred path, carries the provider's traffic again.
"""

from __future__ import annotations

import pytest

from lab.core.waits import wait_until
from lab.ops.failover import measure, restore
from lab.ops.traffic import packets, ping

# On the kernel data plane too: one policy-based static lab, one route-based BGP lab.
TWO_TUNNEL_LABS = [
    "tray-static-ikev1.yaml",
    pytest.param("tray-static-ikev2.yaml", marks=pytest.mark.kernel),
    "tray-bgp-ikev1.yaml",
    pytest.param("tray-bgp-ikev2.yaml", marks=[pytest.mark.kernel, pytest.mark.every_runtime]),
]
FAILURES = ["terminate", "kill-charon", "block", "link-down"]


@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("lab", TWO_TUNNEL_LABS, indirect=True)
def test_tunnel1_fails_over_to_tunnel2(lab, failure):
    m = measure(lab, "tunnel1", failure)
    print(f"\n{lab.lab.name} {m.line()}")
    # On the kernel data plane the SAs live in the kernel: a killed charon leaves them
    # carrying tunnel 1's traffic, and nothing fails over (userspace: they die with it).
    kernel = lab.dataplane("cgw") == "kernel"
    stays = failure == "kill-charon" and kernel
    # Policy-based on the kernel, both tunnels carrying the same LAN pair: cgw holds one
    # inbound policy, tunnel 1's. vgw1's link going down takes its SA's route at once, so
    # the VPC answers through vgw2 at once; cgw decrypts that (tunnel 2's SA counts it) and
    # drops it (tunnel 1's policy, the wrong SA), and those lookups keep tunnel 1 looking
    # busy to DPD. Seen every time in the guest; route mode (BGP labs) has no such limit.
    shared = failure == "link-down" and kernel and lab.lab.tunnels["tunnel1"].mode == "policy"
    if shared:
        assert m.result.carriers_after["to customer"] == "tunnel2", m.line()
        assert m.result.carriers_after["to provider"] is None, m.line()  # nothing got back
        assert not m.bound.holds(m.result.outage), m.line()
        restore(lab)
        return
    try:
        assert m.result.carriers_before["to customer"] == "tunnel1", m.line()
        assert m.result.longest is None or m.result.longest.recovered, m.line()
        assert m.bound.holds(m.result.outage), m.line()
        if stays:
            # Counted by the customer's charon; vgw1's is dead and cannot count its side.
            assert m.result.carriers_after["to customer"] == "tunnel1", m.line()
        else:
            want = {"to customer": "tunnel2", "to provider": "tunnel2"}
            assert m.result.carriers_after == want, m.line()
    finally:
        took = restore(lab)
    print(f"tunnel1 re-established {took:.2f}s after the fault was cleared")
    # The preferred tunnel 1 carries the provider's traffic again once the VPC router
    # has its route back (iBGP, a moment after the SA is up).
    wait_until(
        lambda: _tunnel1_delivers(lab),
        bool,
        timeout=10,
        interval=0.1,
        what="provider traffic back on tunnel1",
    )


def _tunnel1_delivers(lab) -> bool:
    before = packets(lab)[("tunnel1", "cgw")][0]
    answered = ping(lab, "app", "172.16.1.100", 3).received == 3
    return answered and packets(lab)[("tunnel1", "cgw")][0] - before >= 3


@pytest.mark.parametrize("lab", TWO_TUNNEL_LABS, indirect=True)
def test_silent_black_hole_lasts_until_a_timer_notices(lab):
    """ESP from vgw1 to the customer vanishes while IKE still passes: DPD keeps getting
    answers, so only BGP's hold timer ends the outage; with static routing nothing does."""
    m = measure(lab, "tunnel1", "black-hole")
    print(f"\n{lab.lab.name} {m.line()}")
    try:
        tunnel = lab.lab.tunnels["tunnel1"]
        if tunnel.routing == "bgp":
            assert m.result.longest.recovered, m.line()
            # The hold timer runs from the last keepalive cgw heard, up to one keepalive
            # interval before the fault: nothing notices sooner.
            assert m.result.outage >= tunnel.hold - tunnel.keepalive, "noticed before hold"
            assert m.bound.holds(m.result.outage), m.line()
        else:
            assert m.bound.seconds is None
            assert not m.result.longest.recovered, m.line()
            # It outlived even the DPD bound: DPD never fired.
            assert m.result.outage > 8, m.line()
    finally:
        restore(lab)
