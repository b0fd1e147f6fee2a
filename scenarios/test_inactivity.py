"""Tray's inactivity rule: with IKEv1 the provider re-initiates on interesting traffic, with
IKEv2 keeping the tunnel alive is the customer's job (a long-running ping).

The labs are the shipped static Tray labs with tunnel 2 (and its gateway vgw2) removed and
``inactivity: 5s`` on tunnel 1. One tunnel keeps it simple: with two, traffic would move to
tunnel 2 when tunnel 1's SA closes, and nothing would be left to re-initiate on. The
timer is real, only short: charon closes a CHILD_SA once it has seen no packet either way
for 5 s; it counts in whole seconds and re-checks up to a second late, so the SA goes
4..6 s after the last packet (plus the DELETE exchange and polling). Only the CHILD_SA
closes; the IKE_SA stays up.

IKEv1 runbook: the provider's connection gets ``start_action = trap`` (the default for an
IKEv1 provider with an inactivity timeout). One packet from the customer host, then the
CHILD_SA goes after the inactivity timeout. The provider host then sends traffic: the trap
policy catches it and the provider initiates Quick Mode (seen in both charons' logs: the
provider sends the QUICK_MODE request, the customer parses it), the SA is back, and the
traffic gets through.

On this machine the trap policy catches the packet but no acquire follows: strongSwan
5.9.8's userspace data plane (libipsec) drops it and logs "could not find an outbound IPsec
SA for reqid {N}, dropping packet" instead of raising an acquire (added in 5.9.11). The test
proves exactly that first (the drop line for the SA's reqid, and the SA staying down), then
runs ``lab.acquire.AcquireRelay``, which turns that line into the initiation an acquire
would have caused. Where the data plane raises acquires itself (kernel ESP, strongSwan
5.9.11+), the relay is not used and the same assertions apply to charon alone.

IKEv2 runbook: the provider has no trap (``start_action = none``). A 1-packet-per-second
ping from the customer host keeps the CHILD_SA up through three inactivity periods (same
SPIs throughout); when it stops, the SA goes after the inactivity timeout; traffic from the
provider host then does not bring it back (observed for 6 s, polled).
"""

from __future__ import annotations

import queue
import time
from pathlib import Path

import pytest
import yaml

from lab.core.waits import holds_for, wait_until
from lab.ops.acquire import AcquireRelay, raises_acquires
from lab.ops.bringup import RunningLab
from lab.ops.ping import replies
from lab.ops.probe import Probe
from lab.ops.traffic import packets, ping
from lab.render.swanctl import connection
from lab.testing.plugin import lab_name, running_lab, topology_path

INACTIVITY = 5
# charon measures idleness in whole seconds (so 4..5 s may count as 5) and re-checks up to
# a second late; add the DELETE exchange, the 50 ms poll and a busy machine's scheduling.
TEARDOWN = (INACTIVITY - 1, INACTIVITY + 2)
REESTABLISH = 3.0  # one Quick Mode exchange after the first provider packet, with margin
OBSERVE = 6.0  # how long IKEv2 must stay down under provider traffic
TUNNEL = "tunnel1"
PROVIDER_HOST, CUSTOMER_HOST = "app", "pc"
PROVIDER_ADDR, CUSTOMER_ADDR = "10.10.0.100", "172.16.1.100"


def _one_tunnel_lab(tmp: Path, shipped: str, name: str) -> Path:
    data = yaml.safe_load(topology_path(shipped).read_text())
    del data["tunnels"]["tunnel2"]
    del data["sites"]["tray"]["nodes"]["vgw2"]
    data["tunnels"][TUNNEL]["inactivity"] = f"{INACTIVITY}s"
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _inactivity_lab(factory: pytest.TempPathFactory, runtime: str, ike: int):
    path = _one_tunnel_lab(
        factory.mktemp(f"ikev{ike}"), f"tray-static-ikev{ike}.yaml", f"inactivity-v{ike}"
    )
    with running_lab(path, name=lab_name(path), runtime=runtime) as running:
        yield running


@pytest.fixture(scope="module")
def ikev1(tmp_path_factory: pytest.TempPathFactory, lab_runtime: str):
    yield from _inactivity_lab(tmp_path_factory, lab_runtime, 1)


@pytest.fixture(scope="module")
def ikev2(tmp_path_factory: pytest.TempPathFactory, lab_runtime: str):
    yield from _inactivity_lab(tmp_path_factory, lab_runtime, 2)


# --- observing the tunnel ------------------------------------------------------------------


def _children(running: RunningLab) -> dict[str, dict[str, dict]]:
    """gateway -> {CHILD_SA name: its list-sas entry} for the installed CHILD_SAs."""
    t = running.lab.tunnels[TUNNEL]
    out = {}
    for node in (t.provider.node, t.customer.node):
        sa = running.charon(node).ike_sas().get(TUNNEL, {})
        out[node] = {
            c["name"]: c for c in sa.get("child-sas", {}).values() if c.get("state") == "INSTALLED"
        }
    return out


def _all_down(children: dict[str, dict]) -> bool:
    return not any(children.values())


def _all_up(children: dict[str, dict]) -> bool:
    return all(children.values())


def _ike_states(running: RunningLab) -> dict[str, str | None]:
    t = running.lab.tunnels[TUNNEL]
    return {
        n: running.charon(n).ike_sas().get(TUNNEL, {}).get("state")
        for n in (t.provider.node, t.customer.node)
    }


def _wait_down(running: RunningLab, since: float) -> float:
    """Poll until the CHILD_SA is gone on both ends; seconds since ``since`` (epoch)."""
    wait_until(
        lambda: _children(running),
        _all_down,
        timeout=TEARDOWN[1] + 2,
        interval=0.05,
        what=f"{TUNNEL}'s CHILD_SA to close after {INACTIVITY}s of inactivity",
    )
    return time.time() - since


def _drain(events: queue.Queue) -> list[tuple[str, dict]]:
    out = []
    while True:
        try:
            out.append(events.get_nowait())
        except queue.Empty:
            return out


def _said(events: list[tuple[str, dict]], text: str) -> list[str]:
    return [b.get("msg", "") for kind, b in events if kind == "log" and text in b.get("msg", "")]


def _last_reply(output: str) -> float:
    return max(replies(output).values())


# --- IKEv1 -----------------------------------------------------------------------------------


@pytest.mark.kernel
def test_ikev1_provider_reinitiates_on_traffic_after_inactivity(ikev1: RunningLab):
    running = ikev1
    t = running.lab.tunnels[TUNNEL]
    provider, customer = t.provider.node, t.customer.node
    rendered = connection(t, provider)["children"][TUNNEL]
    assert (rendered["start_action"], rendered["inactivity"]) == ("trap", f"{INACTIVITY}s")
    assert connection(t, customer)["children"][TUNNEL]["start_action"] == "start"
    reqid = int(_children(running)[provider][TUNNEL]["reqid"])
    relay = AcquireRelay(running, provider)
    assert relay.trapped() == [TUNNEL], "the provider has no trap policy for the tunnel"

    with (
        running.charon(provider).watch(["log", "child-updown"]) as p_events,
        running.charon(customer).watch(["log", "child-updown"]) as c_events,
    ):
        # 1. Idle: the CHILD_SA goes after the inactivity timeout, the IKE_SA stays.
        before = packets(running)[(TUNNEL, provider)][0]
        assert ping(running, CUSTOMER_HOST, PROVIDER_ADDR, 1).received == 1
        last_packet = time.time()
        assert packets(running)[(TUNNEL, provider)][0] > before, "the ping bypassed the SA"
        teardown = _wait_down(running, last_packet)
        print(
            f"\nIKEv1: CHILD_SA closed {teardown:.2f}s after the last packet "
            f"(inactivity {INACTIVITY}s)"
        )
        events = _drain(p_events) + _drain(c_events)
        assert TEARDOWN[0] <= teardown <= TEARDOWN[1], _said(events, "CHILD_SA")
        assert _ike_states(running) == {provider: "ESTABLISHED", customer: "ESTABLISHED"}
        assert _said(events, f"deleting CHILD_SA after {INACTIVITY} seconds of inactivity")
        assert [k for k, b in events if k == "child-updown" and "up" not in b], (
            "no child-updown (down) event"
        )

        # 2. Without acquires (this machine), the trap catches the packet and drops it.
        native = raises_acquires(running, provider)
        if not native:
            ping(running, PROVIDER_HOST, CUSTOMER_ADDR, 3)
            stayed = holds_for(lambda: _children(running), _all_down, 2.0)
            drops = _said(_drain(p_events), f"outbound IPsec SA for reqid {{{reqid}}}, dropping")
            print(
                f"IKEv1 on {running.dataplane(provider)} data plane without acquires: libipsec "
                f"logged {len(drops)} drop(s) for reqid {reqid}: {drops[:1]}; SA stayed down"
            )
            assert drops, "the trap policy did not catch the provider's packets"
            assert stayed is None, "the SA came back with no acquire: what initiated it?"
            _drain(c_events)

        # 3. Provider traffic re-establishes the SA; the provider initiates.
        relaying = AcquireRelay(running, provider) if not native else _nothing()
        with relaying as relay, Probe(running, PROVIDER_HOST, CUSTOMER_ADDR, 5.0) as probe:
            wait_until(
                lambda: _children(running),
                _all_up,
                timeout=REESTABLISH,
                interval=0.02,
                what="the provider to re-establish the CHILD_SA",
            )
            up = time.time() - probe.started
            result = probe.finish()
        first_reply = min(replies(probe.output).values()) - probe.started
        print(
            f"IKEv1: CHILD_SA re-established {up:.3f}s after the provider's first packet, "
            f"first reply after {first_reply:.3f}s; {result.summary()}"
            + (f"; acquires relayed: {relay.acquires}" if relay else "")
        )
        assert result.longest is None or result.longest.recovered, result.summary()
        # Only what the provider sent before the SA was back may be lost.
        assert result.sent - result.received <= (up + 0.1) / probe.interval + 1, result.summary()
        p_said, c_said = _drain(p_events), _drain(c_events)
        assert _said(p_said, "generating QUICK_MODE request"), "the provider did not initiate"
        assert _said(c_said, "parsed QUICK_MODE request"), "the customer got no QUICK_MODE"
        assert not _said(c_said, "generating QUICK_MODE request"), "the customer initiated"
        assert _ike_states(running) == {provider: "ESTABLISHED", customer: "ESTABLISHED"}
        if relay:
            assert [a.children for a in relay.acquires] == [(TUNNEL,)], relay.acquires
            assert all(a.error is None for a in relay.acquires), relay.acquires


class _nothing:
    """A stand-in for the relay where charon gets real acquires."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc) -> None:
        pass


# --- IKEv2 -----------------------------------------------------------------------------------


def test_ikev2_customer_keepalive_keeps_the_sa_up(ikev2: RunningLab):
    running = ikev2
    t = running.lab.tunnels[TUNNEL]
    assert connection(t, t.provider.node)["children"][TUNNEL]["start_action"] == "none"
    first = _children(running)
    assert _all_up(first)
    spis = {n: c[TUNNEL]["spi-in"] for n, c in first.items()}
    periods = 3
    with Probe(
        running, CUSTOMER_HOST, PROVIDER_ADDR, periods * INACTIVITY + 1, interval=1.0
    ) as keepalive:
        # Up, with the same SAs, for as long as the ping runs (bounded by its count).
        broken = holds_for(
            lambda: {
                n: {k: c["spi-in"] for k, c in cs.items()} for n, cs in _children(running).items()
            },
            lambda now: now == {n: {TUNNEL: s} for n, s in spis.items()},
            periods * INACTIVITY,
            interval=0.2,
        )
        result = keepalive.finish()
    print(f"\nIKEv2: 1/s keepalive from {CUSTOMER_HOST}: {result.summary()}")
    assert broken is None, f"the SA changed or closed under keepalive: {broken}"
    assert result.carriers_after == {"to customer": TUNNEL, "to provider": TUNNEL}, (
        "the keepalive did not go through the tunnel"
    )
    assert result.received >= result.sent - 1, result.summary()
    # The keepalive stops: the SA goes after the inactivity timeout.
    teardown = _wait_down(running, _last_reply(keepalive.output))
    print(
        f"IKEv2: CHILD_SA closed {teardown:.2f}s after the last keepalive "
        f"(inactivity {INACTIVITY}s)"
    )
    assert TEARDOWN[0] <= teardown <= TEARDOWN[1]


def test_ikev2_provider_traffic_does_not_bring_the_sa_back(ikev2: RunningLab):
    running = ikev2
    t = running.lab.tunnels[TUNNEL]
    if not _all_down(_children(running)):  # run on its own: wait out the inactivity
        wait_until(
            lambda: _children(running),
            _all_down,
            timeout=INACTIVITY + 4,
            interval=0.05,
            what="the idle CHILD_SA to close",
        )
    # Only the CHILD_SA closed: IKE-wise the tunnel looks up, yet it carries nothing.
    assert _ike_states(running) == {t.provider.node: "ESTABLISHED", t.customer.node: "ESTABLISHED"}
    with running.charon(t.provider.node).session() as s:
        assert not list(s.list_policies({"trap": "yes"})), "IKEv2 provider has a trap"
    with (
        running.charon(t.provider.node).watch(["child-updown"]) as events,
        Probe(running, PROVIDER_HOST, CUSTOMER_ADDR, OBSERVE) as probe,
    ):
        came_back = holds_for(lambda: _children(running), _all_down, OBSERVE, interval=0.1)
        result = probe.finish()
        ups = [b for kind, b in _drain(events) if b.get("up") == "yes"]
    print(f"\nIKEv2: provider traffic for {OBSERVE:.0f}s after inactivity: {result.summary()}")
    assert came_back is None, f"the SA came back: {came_back}"
    assert not ups, "the provider brought a CHILD_SA up"
    assert result.received == 0, result.summary()
