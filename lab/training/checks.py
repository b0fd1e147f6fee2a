"""The checks that decide an exercise is fixed: a small vocabulary used in exercise.yaml,
implemented once here, each reading the live lab (vici, vtysh JSON, SA counters, pings),
never the text of a configuration file.

    checks:
      - tunnel_up: tunnel1                                 # IKE SA and CHILD_SAs, both ends
      - proposal: {tunnel: tunnel1, ike: aes256-sha256-modp2048, esp: aes256-sha256}
      - selectors: {tunnel: tunnel1, covers: [172.16.2.0/24]}
      - bgp_prefix: {node: vgw1, prefix: 172.16.1.0/24}
      - ping: {from: pc, to: app}
      - transfer: {from: pc, to: app, bytes: 1048576}      # bulk TCP, full-sized segments
      - rekey: {tunnel: tunnel1, pfs: modp2048}            # active
      - failover: {by: block}                              # active
      - after_idle: {tunnel: tunnel1, from: app, to: pc}   # active

Passive checks are read again and again until they hold (or the wait is over); active
ones change the lab for a while (a fault, a rekey, an idle period), so they run once, in
order, and only once every passive check holds.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from ipaddress import IPv4Network

from pydantic import BaseModel, Field, ValidationError, model_validator

from lab.core.errors import InputError, LabError, WaitTimeout
from lab.core.results import CheckResult, verdict
from lab.core.waits import holds_for, wait_until
from lab.topology.model import Lab
from lab.topology.proposals import check_proposal
from lab.topology.schema import Network, Strict
from lab.topology.yamlfile import validation_errors

DH_PREFIXES = ("modp", "ecp", "curve", "x25519")


@dataclass(frozen=True)
class Verdict:
    passed: bool
    seen: str  # what the lab showed: why it fails, or what holds


@dataclass(frozen=True)
class CheckKind:
    name: str
    params: type[BaseModel]
    run: Callable  # (RunningLab, params) -> Verdict
    label: Callable[[BaseModel], str]
    active: bool
    scalar: str | None  # the field a bare value fills: `tunnel_up: tunnel1`


CHECKS: dict[str, CheckKind] = {}


def check(
    name: str, params: type[BaseModel], label: Callable, *, active: bool = False, scalar=None
):
    """Register a check kind; names are unique and listed on error."""

    def register(fn: Callable) -> Callable:
        if name in CHECKS:
            raise ValueError(f"check {name!r} registered twice")
        CHECKS[name] = CheckKind(name, params, fn, label, active, scalar)
        return fn

    return register


@dataclass(frozen=True)
class CheckSpec:
    kind: str
    params: BaseModel
    label: str

    @property
    def active(self) -> bool:
        return CHECKS[self.kind].active


# --- parsing ---------------------------------------------------------------------------------


class _Labelled(Strict):
    label: str | None = Field(None, description="how the check is named (default: derived)")


def parse_checks(items: list, lab: Lab, file: str) -> list[CheckSpec]:
    """exercise.yaml's ``checks:`` into specs; nodes and tunnels must exist in ``lab``."""
    specs = []
    for i, item in enumerate(items):
        field = f"checks.{i}"
        if not isinstance(item, dict) or len(item) != 1:
            raise InputError(field, f"one check per item, e.g. 'tunnel_up: tunnel1'; known: "
                             f"{', '.join(CHECKS)}", file)  # fmt: skip
        ((kind, value),) = item.items()
        if kind not in CHECKS:
            raise InputError(field, f"unknown check {kind!r}; known: {', '.join(CHECKS)}", file)
        k = CHECKS[kind]
        data = {k.scalar: value} if k.scalar and not isinstance(value, dict) else value
        if not isinstance(data, dict):
            raise InputError(f"{field}.{kind}", "a mapping of the check's settings", file)
        try:
            params = k.params.model_validate(data)
        except ValidationError as exc:
            sub, rule = validation_errors(exc)[0]
            where = f"{field}.{kind}" + ("" if sub == "(top level)" else f".{sub}")
            raise InputError(where, rule, file) from None
        _cross_check(params, lab, f"{field}.{kind}", file)
        label = getattr(params, "label", None) or f"{kind} {k.label(params)}"
        specs.append(CheckSpec(kind, params, label))
    labels = [s.label for s in specs]
    for i, label in enumerate(labels):
        if labels.index(label) != i:
            raise InputError(f"checks.{i}", f"two checks named {label!r}: give one a label", file)
    return specs


def _cross_check(params: BaseModel, lab: Lab, field: str, file: str) -> None:
    for key in ("tunnel",):
        value = getattr(params, key, None)
        if value is not None and value not in lab.tunnels:
            raise InputError(
                f"{field}.{key}", f"no tunnel {value!r}; tunnels: {', '.join(lab.tunnels)}", file
            )
    for key in ("node", "from_"):
        value = getattr(params, key, None)
        if value is not None and value not in lab.nodes:
            raise InputError(
                f"{field}.{key.rstrip('_')}",
                f"no node {value!r}; nodes: {', '.join(lab.nodes)}",
                file,
            )
    to = getattr(params, "to", None)
    if to is not None and to not in lab.nodes:
        raise InputError(f"{field}.to", f"no node {to!r}; nodes: {', '.join(lab.nodes)}", file)


# --- the checks ------------------------------------------------------------------------------
# Imported inside the functions: parsing an exercise (list, validate) must not load the
# engine (pyroute2, vici, the Docker SDK).


class TunnelRef(_Labelled):
    tunnel: str


def _tunnel_verdict(running, tunnel: str) -> Verdict:
    from lab.observe.convergence import tunnel_problems
    from lab.observe.diagnose import diagnose

    problems = [p for p in tunnel_problems(running) if p.tunnel == tunnel]
    if not problems:
        return Verdict(True, f"{tunnel} is up on both ends")
    causes = [d.message for d in diagnose(running, {tunnel}) if d.tunnel == tunnel]
    return Verdict(False, "; ".join([*(p.text for p in problems), *causes]))


@check("tunnel_up", TunnelRef, lambda p: p.tunnel, scalar="tunnel")
def _tunnel_up(running, p: TunnelRef) -> Verdict:
    return _tunnel_verdict(running, p.tunnel)


class ProposalCheck(_Labelled):
    tunnel: str
    ike: str | None = None
    esp: str | None = Field(None, description="without a DH group: PFS is the rekey check's")

    @model_validator(mode="after")
    def _known(self) -> ProposalCheck:
        for value, esp in ((self.ike, False), (self.esp, True)):
            if value is not None and (why := check_proposal(value, esp=esp)):
                raise ValueError(why)
        return self


def _without_dh(proposal: str) -> str:
    return "-".join(w for w in proposal.split("-") if not w.startswith(DH_PREFIXES))


@check("proposal", ProposalCheck, lambda p: p.tunnel)
def _proposal(running, p: ProposalCheck) -> Verdict:
    """What the provider's end negotiated (the customer's end agrees, or there is no SA)."""
    from lab.topology.proposals import keywords

    t = running.lab.tunnels[p.tunnel]
    sa = running.charon(t.provider.node).ike_sas().get(p.tunnel)
    if not sa or sa.get("state") != "ESTABLISHED":
        return Verdict(False, f"{p.tunnel} has no established IKE SA on {t.provider.node}")
    seen = [f"IKE {keywords(sa)}"]
    ok = p.ike is None or keywords(sa) == p.ike
    children = [c for c in sa.get("child-sas", {}).values() if c.get("state") == "INSTALLED"]
    if p.esp is not None:
        esp = sorted({_without_dh(keywords(c)) for c in children})
        seen.append(f"ESP {', '.join(esp) or 'none installed'}")
        ok = ok and esp == [_without_dh(p.esp)]
    want = ", ".join(f"{k} {v}" for k, v in (("IKE", p.ike), ("ESP", p.esp)) if v)
    return Verdict(ok, f"negotiated {'; '.join(seen)}" + ("" if ok else f" (expected {want})"))


class SelectorCheck(_Labelled):
    tunnel: str
    covers: list[Network] = Field(min_length=1)


@check("selectors", SelectorCheck, lambda p: f"{p.tunnel} {','.join(map(str, p.covers))}")
def _selectors(running, p: SelectorCheck) -> Verdict:
    """The installed CHILD_SAs' remote selectors on the provider cover the subnets."""
    t = running.lab.tunnels[p.tunnel]
    sa = running.charon(t.provider.node).ike_sas().get(p.tunnel) or {}
    remote = [
        IPv4Network(ts)
        for c in sa.get("child-sas", {}).values()
        if c.get("state") == "INSTALLED"
        for ts in c.get("remote-ts", [])
    ]
    missing = [n for n in p.covers if not any(n.subnet_of(r) for r in remote)]
    seen = f"{t.provider.node} has {p.tunnel} carrying {', '.join(map(str, remote)) or 'nothing'}"
    if missing:
        return Verdict(False, f"{seen}: {', '.join(map(str, missing))} left out")
    return Verdict(True, seen)


class BgpPrefix(_Labelled):
    node: str
    prefix: Network


@check("bgp_prefix", BgpPrefix, lambda p: f"{p.node} {p.prefix}")
def _bgp_prefix(running, p: BgpPrefix) -> Verdict:
    routes = running.frr(p.node).show("show bgp ipv4 unicast", daemon="bgpd").get("routes", {})
    if str(p.prefix) in routes:
        return Verdict(True, f"{p.node} has {p.prefix} in its BGP table")
    known = ", ".join(sorted(routes)) or "nothing"
    return Verdict(False, f"{p.node} has no BGP route to {p.prefix} (it has {known})")


class PingCheck(_Labelled):
    from_: str = Field(alias="from")
    to: str
    count: int = Field(3, ge=1, le=20)


def _address(running, node: str) -> str:
    return str(running.lab.nodes[node].interfaces[0].address.ip)


@check("ping", PingCheck, lambda p: f"{p.from_} -> {p.to}")
def _ping(running, p: PingCheck) -> Verdict:
    from lab.ops.traffic import ping

    result = ping(running, p.from_, _address(running, p.to), count=p.count, interval=0.05)
    seen = f"{p.from_} -> {p.to}: {result.received} of {result.sent} answered"
    return Verdict(result.received == result.sent, seen)


class TransferCheck(_Labelled):
    from_: str = Field(alias="from")
    to: str
    bytes: int = Field(1 << 20, ge=1, le=100 << 20, description="sent from `from` to `to`")
    within: int = Field(5, ge=1, le=60, description="seconds before the transfer counts as hung")


@check("transfer", TransferCheck, lambda p: f"{p.from_} -> {p.to}")
def _transfer(running, p: TransferCheck) -> Verdict:
    """``bytes`` over one TCP connection, counted where they arrive: full-sized segments,
    which a ping does not send (a PMTU black hole passes pings and stalls this)."""
    from lab.ops.transfer import transfer

    t = transfer(running, p.from_, p.to, _address(running, p.to), p.bytes, p.within)
    seen = f"{p.from_} -> {p.to}: {t.received} of {t.size} bytes arrived"
    if t.complete:
        return Verdict(True, seen)
    if not t.connected:
        return Verdict(False, f"{seen}: no TCP connection within {p.within}s")
    return Verdict(
        False,
        f"{seen} within {p.within}s (connection set up, {t.sent} bytes written by "
        f"{p.from_}, then it stalled)",
    )


# --- active checks ---------------------------------------------------------------------------
REKEY_WITHIN = 5.0  # one CREATE_CHILD_SA exchange on the lab's fabric, on a busy machine


class RekeyCheck(_Labelled):
    tunnel: str
    pfs: str | None = Field(None, description="the DH group the new CHILD_SA must use")


def _installed(running, node: str, tunnel: str) -> dict[str, dict]:
    """Inbound SPI -> CHILD_SA, for the tunnel's INSTALLED CHILD_SAs on ``node``."""
    from lab.observe.convergence import tunnel_sa

    sa = tunnel_sa(running.lab, tunnel, node, running.charon(node).ike_sas()) or {}
    return {
        c["spi-in"]: c for c in sa.get("child-sas", {}).values() if c.get("state") == "INSTALLED"
    }


@check("rekey", RekeyCheck, lambda p: p.tunnel, active=True)
def _rekey(running, p: RekeyCheck) -> Verdict:
    """Each end rekeys the CHILD_SA in turn (as its lifetime would make it): a new one must
    be installed on both ends, with the PFS group when one is asked for."""
    from lab.topology.proposals import keywords

    t = running.lab.tunnels[p.tunnel]
    seen = []
    for node in (t.customer.node, t.provider.node):
        before = _installed(running, node, p.tunnel)
        if not before:
            return Verdict(False, f"{p.tunnel} has no CHILD_SA installed on {node}")
        name = next(iter(before.values()))["name"]
        running.charon(node).rekey(child=name)
        try:
            new = wait_until(
                lambda n=node, old=set(before): {
                    s: c for s, c in _installed(running, n, p.tunnel).items() if s not in old
                },
                bool,
                timeout=REKEY_WITHIN,
                interval=0.1,
                what=f"a new CHILD_SA of {p.tunnel} on {node}",
            )
        except WaitTimeout:
            why = running.charon(node).tunnel_log(p.tunnel, lines=3).replace("\n", " / ")
            return Verdict(
                False,
                f"rekey of {p.tunnel} started by {node} did not complete within "
                f"{REKEY_WITHIN:g}s (the old CHILD_SA runs until it expires); {node} logged: {why}",
            )
        got = keywords(next(iter(new.values())))
        if p.pfs and not got.endswith(p.pfs):
            return Verdict(False, f"rekey by {node} gave {got}, without PFS group {p.pfs}")
        seen.append(f"by {node}: {got}")
    return Verdict(True, f"{p.tunnel} rekeyed " + ", ".join(seen))


class FailoverCheck(_Labelled):
    by: str = Field("block", description="how the tunnel fails (lab.ops.failover.FAILURES)")

    @model_validator(mode="after")
    def _known(self) -> FailoverCheck:
        from lab.ops.failover import FAILURES

        if self.by not in FAILURES:
            raise ValueError(f"unknown failure {self.by!r}; known: {', '.join(FAILURES)}")
        return self


def carrier(running) -> str:
    """The tunnel that carries the customer's traffic to the provider now (SA counters)."""
    from lab.ops.failover import probe_pair
    from lab.ops.traffic import ping_carried

    first = next(iter(running.lab.tunnels))
    provider_host, customer_addr = probe_pair(running, first)
    customer_host = next(
        n.name for n in running.lab.nodes.values()
        if any(str(i.address.ip) == customer_addr for i in n.interfaces)
    )  # fmt: skip
    _, carried = ping_carried(running, customer_host, _address(running, provider_host), 5)
    sent = {t.name: carried[(t.name, t.customer.node)][1] for t in running.lab.tunnels.values()}
    return max(sent, key=lambda name: sent[name])


@check("failover", FailoverCheck, lambda p: f"by {p.by}", active=True)
def _failover(running, p: FailoverCheck) -> Verdict:
    """Fail the tunnel carrying the customer's traffic; traffic both ways must be back,
    over the other tunnel, within what the configured timers allow."""
    from lab.ops import faults
    from lab.ops.failover import measure

    if len(running.lab.tunnels) < 2:
        raise LabError("a failover check needs two tunnels")
    tunnel = carrier(running)
    kept = {f.id for f in faults.active(running)}
    try:
        m = measure(running, tunnel, p.by)
    finally:
        for f in faults.active(running):
            if f.id not in kept:
                faults.clear(running, f.id)
        _restart_customer_tunnel(running, tunnel)
    r = m.result
    ok = (r.longest is None or r.longest.recovered) and m.bound.holds(r.outage)
    return Verdict(ok, f"{tunnel} failed ({p.by}): {r.summary()}; allowed {m.bound}")


def _restart_customer_tunnel(running, tunnel: str) -> None:
    """What the customer would do after the outage: restart the tunnel on its gateway, then
    wait until every tunnel is up again (a broken DPD would otherwise leave it dead)."""
    from lab.observe.convergence import tunnel_problems
    from lab.training.customer import restart_tunnels

    restart_tunnels(running, running.lab.tunnels[tunnel].customer.node, [tunnel])
    wait_until(
        lambda: tunnel_problems(running),
        lambda problems: not problems,
        timeout=20,
        interval=0.1,
        what=f"every tunnel of {running.name} up again after the failover check",
    )


class IdleCheck(_Labelled):
    tunnel: str
    from_: str = Field(alias="from")
    to: str


IDLE_MARGIN = 3.0  # charon re-checks inactivity up to a second late; plus the DELETE exchange
REACH_WITHIN = 5.0  # a new CHILD_SA (one exchange) and a reply through it


@check("after_idle", IdleCheck, lambda p: f"{p.tunnel} {p.from_} -> {p.to}", active=True)
def _after_idle(running, p: IdleCheck) -> Verdict:
    """Leave the tunnel idle past the provider's inactivity timeout, then ``from`` must
    still reach ``to`` (the tunnel kept alive, or brought back by the customer)."""
    from lab.ops.traffic import ping

    t = running.lab.tunnels[p.tunnel]
    idle = max(t.provider.inactivity, t.customer.inactivity)
    if not idle:
        raise LabError(f"{p.tunnel} has no inactivity timeout: nothing closes it when idle")
    before = set(_installed(running, t.provider.node, p.tunnel))
    if not before:
        return Verdict(False, f"{p.tunnel} has no CHILD_SA installed on {t.provider.node}")
    gone = holds_for(
        lambda: set(_installed(running, t.provider.node, p.tunnel)),
        lambda now: before <= now,
        seconds=idle + IDLE_MARGIN,
    )
    what = "closed for inactivity" if gone is not None else "kept alive"
    try:
        wait_until(
            lambda: ping(running, p.from_, _address(running, p.to), count=1).received,
            bool,
            timeout=REACH_WITHIN,
            interval=0.1,
            what=f"{p.from_} to reach {p.to}",
        )
    except WaitTimeout:
        return Verdict(
            False,
            f"{p.tunnel}'s CHILD_SA was {what} after {idle}s without traffic, and "
            f"{p.from_} could not reach {p.to} for {REACH_WITHIN:g}s afterwards",
        )
    return Verdict(True, f"{p.tunnel}'s CHILD_SA was {what}; {p.from_} reaches {p.to}")


# --- running them ----------------------------------------------------------------------------


def evaluate(running, specs: list[CheckSpec], wait: float) -> list[CheckResult]:
    """Passive checks, read until all hold or ``wait`` seconds have passed; then the active
    ones, once each, in order, while every earlier one holds."""
    passive = [s for s in specs if not s.active]
    last: dict[str, Verdict] = {}

    def read() -> dict[str, Verdict]:
        last.clear()
        last.update({s.label: CHECKS[s.kind].run(running, s.params) for s in passive})
        return last

    with suppress(WaitTimeout):  # on timeout the verdicts say what still fails
        wait_until(read, lambda seen: all(v.passed for v in seen.values()), timeout=wait,
                   interval=0.2, what="the exercise's checks")  # fmt: skip
    results, failing = [], not all(v.passed for v in last.values())
    for s in specs:
        if not s.active:
            v = last[s.label]
            results.append(CheckResult(s.label, verdict(v.passed), seen=v.seen))
        elif failing:
            results.append(CheckResult(s.label, "skip", seen="not run: an earlier check fails"))
        else:
            v = CHECKS[s.kind].run(running, s.params)
            results.append(CheckResult(s.label, verdict(v.passed), seen=v.seen))
            failing = not v.passed
    return results
