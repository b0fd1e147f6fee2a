"""Rekeys under load: force IKE or CHILD_SA rekeys while a probe runs, and count the loss.

No fault is involved. Rekeying is make-before-break: the new SA is installed on both ends
before the old one goes, so traffic should not notice. Each rekey is asked of one gateway
over vici (alternating between the customer and the provider end), then the next one waits
until this one has completed on both ends (polled from list-sas: new SPIs in place, the old
SAs no longer installed) and the new SAs have carried probe traffic both ways.

What completion looks like in strongSwan 5.9.8:
- CHILD_SA rekey: a new CHILD_SA (new SPIs, same reqid) is INSTALLED on both ends; the old
  one becomes REKEYED/DELETED (IKEv2: deleted at once, its inbound SA kept a few seconds;
  IKEv1: kept as REKEYED until its lifetime ends).
- IKE_SA rekey: IKEv2 rekeys in place (CREATE_CHILD_SA), the CHILD_SAs move to the new
  IKE_SA with their SPIs. IKEv1 has no IKE rekey: strongSwan reauthenticates, a new
  ISAKMP SA (Main Mode) adopts the CHILD_SAs and the old one stays, childless, in state
  REKEYING/ESTABLISHED until its lifetime ends.
"""

from __future__ import annotations

import bisect
import itertools
import time
from dataclasses import dataclass, field

from lab.core.errors import LabError
from lab.core.waits import wait_until
from lab.ops.failover import probe_pair
from lab.ops.ping import replies
from lab.ops.probe import Probe, ProbeResult
from lab.session.handle import RunningLab

KINDS = ("ike", "child")
# A rekey is one exchange (two for IKEv1 reauthentication) on a lab's fast fabric; this
# allows for a slow, busy CI machine, plus the traffic awaited on the new SAs.
PER_REKEY = 5.0  # an upper bound: the probe is stopped once the rekeys are done
LEAD = 1.0  # probe traffic before the first rekey
CARRIED = 25  # packets each way on the new SAs before the next rekey (0.5 s at 20 ms)


@dataclass(frozen=True)
class Child:
    name: str
    uniqueid: int
    reqid: int
    spi_in: str
    spi_out: str
    packets_in: int


@dataclass(frozen=True)
class SaView:
    """One gateway's SAs of one tunnel, as list-sas shows them."""

    ike_id: int | None  # uniqueid of the newest IKE_SA of the tunnel
    ike_state: str | None
    ike_spis: tuple[str, str] | None  # (initiator SPI, responder SPI)
    installed: dict[str, Child]  # CHILD_SA name -> the newest INSTALLED one
    installed_spis: frozenset[str]  # inbound SPIs of every INSTALLED CHILD_SA
    ike_children: frozenset[str]  # names of the INSTALLED CHILD_SAs under the newest IKE_SA

    @property
    def spis(self) -> frozenset[str]:
        return frozenset(c.spi_in for c in self.installed.values())


def sa_view(list_sas: list[dict], tunnel: str) -> SaView:
    """Pure: ``SaView`` of ``tunnel`` from a ``Charon.list_sas()`` answer."""
    ikes = [sa for entry in list_sas for name, sa in entry.items() if name == tunnel]
    newest = max(ikes, key=lambda sa: int(sa.get("uniqueid", 0)), default=None)
    installed: dict[str, Child] = {}
    spis = set()
    for sa in ikes:
        for c in sa.get("child-sas", {}).values():
            if c.get("state") != "INSTALLED":
                continue
            child = Child(
                c["name"],
                int(c.get("uniqueid", 0)),
                int(c.get("reqid", 0)),
                c.get("spi-in", ""),
                c.get("spi-out", ""),
                int(c.get("packets-in", 0)),
            )
            spis.add(child.spi_in)
            if child.name not in installed or child.uniqueid > installed[child.name].uniqueid:
                installed[child.name] = child
    under_newest = frozenset(
        c["name"]
        for c in (newest or {}).get("child-sas", {}).values()
        if c.get("state") == "INSTALLED"
    )
    return SaView(
        ike_id=int(newest["uniqueid"]) if newest else None,
        ike_state=newest.get("state") if newest else None,
        ike_spis=(newest.get("initiator-spi", ""), newest.get("responder-spi", ""))
        if newest
        else None,
        installed=installed,
        installed_spis=frozenset(spis),
        ike_children=under_newest,
    )


def child_rekeyed(before: SaView, after: SaView, children: list[str]) -> bool:
    """Every CHILD_SA has a new installed SA, and none of the old ones is installed."""
    return all(
        c in after.installed and after.installed[c].spi_in not in before.spis for c in children
    ) and not (after.installed_spis & before.spis)


def ike_rekeyed(before: SaView, after: SaView, children: list[str]) -> bool:
    """A new IKE_SA (new SPIs) is established and holds every CHILD_SA."""
    return (
        after.ike_state == "ESTABLISHED"
        and after.ike_spis is not None
        and after.ike_spis != before.ike_spis
        and after.ike_id != before.ike_id
        and set(children) <= after.ike_children
    )


@dataclass(frozen=True)
class Rekey:
    kind: str
    node: str  # the gateway that was asked to rekey
    requested: float  # epoch seconds
    seconds: float  # until complete on both ends (polled every 20 ms)
    before: dict[str, SaView]  # node -> its SAs before
    after: dict[str, SaView]

    def line(self) -> str:
        return f"{self.kind} rekey from {self.node}: complete on both ends in {self.seconds:.3f}s"


@dataclass
class RekeyRun:
    tunnel: str
    kind: str
    rekeys: list[Rekey]
    result: ProbeResult
    lost_at: list[float] = field(default_factory=list)  # when each lost probe was sent

    @property
    def lost(self) -> int:
        return self.result.sent - self.result.received

    def lost_per_rekey(self) -> list[int]:
        """Lost probes charged to each rekey: those sent from just before its request
        until just before the next one's."""
        return attribute(self.lost_at, [r.requested for r in self.rekeys], self.result.interval)

    def summary(self) -> str:
        per = ", ".join(map(str, self.lost_per_rekey()))
        took = ", ".join(f"{r.seconds:.2f}" for r in self.rekeys)
        return (
            f"{self.tunnel}: {len(self.rekeys)} {self.kind} rekeys under a "
            f"{self.result.interval * 1000:.0f} ms probe: {self.result.summary()}; "
            f"{self.lost} probes lost in all (per rekey: {per}); rekeys took {took} s"
        )


def lost_send_times(output: str, started: float, interval: float, sent: int) -> list[float]:
    """Pure: when each probe that got no reply was sent (``ping -D`` output), placed by the
    nearest earlier reply (a reply comes a millisecond after its request here), or the
    nearest later one, or failing both by the probe's start."""
    answered_at = replies(output)
    answered = sorted(answered_at)
    out = []
    for seq in range(1, sent + 1):
        if seq in answered_at:
            continue
        i = bisect.bisect_left(answered, seq)
        if i > 0:
            out.append(answered_at[answered[i - 1]] + (seq - answered[i - 1]) * interval)
        elif i < len(answered):
            out.append(answered_at[answered[i]] - (answered[i] - seq) * interval)
        else:
            out.append(started + (seq - 1) * interval)
    return out


def attribute(lost_at: list[float], requests: list[float], interval: float) -> list[int]:
    """Pure: per request time, how many of ``lost_at`` fall from one probe interval before
    it until one interval before the next request (the last one: until the end)."""
    counts = [0] * len(requests)
    for t in lost_at:
        i = bisect.bisect_right(requests, t + interval) - 1
        if i >= 0:
            counts[i] += 1
    return counts


def views(running: RunningLab, tunnel: str) -> dict[str, SaView]:
    t = running.lab.tunnels[tunnel]
    return {
        ep.node: sa_view(running.charon(ep.node).list_sas(), tunnel)
        for ep in (t.provider, t.customer)
    }


def children_of(running: RunningLab, tunnel: str) -> list[str]:
    t = running.lab.tunnels[tunnel]
    return [c.name for c in t.child_sas(t.customer.node)]


def rekey_once(
    running: RunningLab, tunnel: str, kind: str, node: str, timeout: float = 10.0
) -> Rekey:
    """Ask ``node`` to rekey the tunnel's IKE_SA or all its CHILD_SAs, and wait (polled)
    until the rekey is complete on both ends."""
    if kind not in KINDS:
        raise LabError(f"rekey kind {kind!r}: choose one of {', '.join(KINDS)}")
    children = children_of(running, tunnel)
    before = views(running, tunnel)
    mine = before[node]
    missing = [c for c in children if c not in mine.installed]
    if mine.ike_state != "ESTABLISHED" or missing:
        raise LabError(
            f"{tunnel} on {node} is not up (IKE {mine.ike_state}, "
            f"CHILD_SAs missing: {missing}); nothing to rekey"
        )
    charon = running.charon(node)
    requested, t0 = time.time(), time.monotonic()
    if kind == "ike":
        # By uniqueid alone: an IKEv1 tunnel may still list the childless ISAKMP SA an
        # earlier rekey left behind, and a rekey by name would reauthenticate that one too.
        charon.rekey(ike_id=mine.ike_id)
    else:
        for c in children:
            charon.rekey(child=c, child_id=mine.installed[c].uniqueid)
    done = child_rekeyed if kind == "child" else ike_rekeyed
    after = wait_until(
        lambda: views(running, tunnel),
        lambda v: all(done(before[n], v[n], children) for n in v),
        timeout=timeout,
        interval=0.02,
        what=f"{kind} rekey of {tunnel} to complete on both ends",
    )
    return Rekey(kind, node, requested, time.monotonic() - t0, before, after)


def sa_counters(running: RunningLab) -> dict[tuple[str, str, str], int]:
    """(tunnel, gateway, inbound SPI) -> packets decrypted, for every installed CHILD_SA.

    Per SA, not summed per tunnel like ``traffic.packets``: a rekeyed SA's counts vanish
    with it (IKEv2 deletes it a few seconds later), which must not look like less traffic.
    """
    out = {}
    for t in running.lab.tunnels.values():
        for ep in (t.provider, t.customer):
            view = sa_view(running.charon(ep.node).list_sas(), t.name)
            for child in view.installed.values():
                out[(t.name, ep.node, child.spi_in)] = child.packets_in
    return out


def carried(
    start: dict, now: dict, tunnel: str, customer: str, providers: set[str], enough: int = CARRIED
) -> bool:
    """Pure: since ``start``, ``tunnel``'s SAs decrypted ``enough`` packets at the customer
    gateway, and the provider gateways as many (the replies, over whichever tunnel)."""

    def grown(keys) -> int:
        return sum(max(0, now[k] - start.get(k, 0)) for k in keys)

    to_customer = grown(k for k in now if k[0] == tunnel and k[1] == customer)
    to_provider = grown(k for k in now if k[1] in providers)
    return to_customer >= enough and to_provider >= enough


def _carried(running: RunningLab, tunnel: str, start: dict) -> bool:
    providers = {t.provider.node for t in running.lab.tunnels.values()}
    return carried(
        start, sa_counters(running), tunnel, running.lab.tunnels[tunnel].customer.node, providers
    )


def rekey_under_load(
    running: RunningLab,
    tunnel: str,
    kind: str,
    count: int,
    *,
    interval: float = 0.02,
    initiators: tuple[str, ...] = ("customer", "provider"),
) -> RekeyRun:
    """Probe provider host -> customer host every ``interval`` s and force ``count``
    rekeys of ``tunnel`` one after the other, each asked of the next side in
    ``initiators``; return the probe result and each rekey's timing."""
    t = running.lab.tunnels[tunnel]
    src, dst = probe_pair(running, tunnel)
    sides = itertools.cycle([getattr(t, side).node for side in initiators])
    rekeys: list[Rekey] = []
    with Probe(running, src, dst, LEAD + count * PER_REKEY, interval) as probe:
        start = sa_counters(running)
        wait_until(
            lambda: _carried(running, tunnel, start),
            bool,
            timeout=5,
            interval=0.05,
            what=f"probe traffic {src} -> {dst} through {tunnel}",
        )
        for _ in range(count):
            rekeys.append(rekey_once(running, tunnel, kind, next(sides)))
            start = sa_counters(running)
            wait_until(
                lambda s=start: _carried(running, tunnel, s),
                bool,
                timeout=5,
                interval=0.02,
                what=f"probe traffic on {tunnel}'s new SAs",
            )
        if time.time() >= probe.started + probe.seconds:
            raise LabError(
                f"the probe ended before the {count} {kind} rekeys did: "
                "they did not all happen under load"
            )
        probe.stop()
        result = probe.finish()
    lost_at = lost_send_times(probe.output, result.started, interval, result.sent)
    return RekeyRun(tunnel, kind, rekeys, result, lost_at)
