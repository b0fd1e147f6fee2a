"""The conformance checks. Each returns results that say what was expected, what was
seen, and the verdict; the lab checks read the real daemons (vici, vtysh JSON, SA counters,
nftables counters), the template checks read the rendered bundle.
"""

from __future__ import annotations

from ipaddress import IPv4Network

from lab.conformance import template_rules
from lab.conformance.result import result
from lab.core.errors import WaitTimeout
from lab.core.parallel import by_key
from lab.core.results import CheckResult, verdict
from lab.observe.convergence import tunnel_problems, tunnel_sa
from lab.ops import failover as failover_ops
from lab.ops.traffic import PingResult, count, counted, hosts_behind, ping, ping_carried
from lab.providers import swanctl_file
from lab.providers.plan import CUSTOMER_SITE, GATEWAY, Plan
from lab.providers.setup import Prepared
from lab.session.handle import RunningLab
from lab.topology.proposals import keywords

COUNT = 5  # pings per reachability check


# the bundle, before any lab ---------------------------------------------------------------
def template_checks(p: Prepared) -> list[CheckResult]:
    """The rendered swanctl.conf: one connection per tunnel, only proposals the profile
    allows, and the profile's other rules (lifetimes, DPD, keep-up actions, PFS)."""
    conf = swanctl_file.parse(p.bundle["swanctl.conf"], f"{p.templates}/swanctl.conf.j2")
    offered = swanctl_file.offered(conf)
    out = [
        result(
            "template",
            "tunnels",
            f"{p.form.tunnels} connection(s), one per tunnel",
            f"{len(offered)} connection(s): {', '.join(offered) or 'none'}",
            verdict(len(offered) == p.form.tunnels),
            ""
            if len(offered) == p.form.tunnels
            else f"the template configures {len(offered)} tunnel(s) where the "
            f"{p.profile.name} profile and the form ask for {p.form.tunnels}",
        )
    ]
    for conn, phases in offered.items():
        bad = []
        for phase, allowed in (("ike", p.profile.ike), ("esp", p.profile.esp)):
            for proposal in phases[phase]:
                if proposal == "default":
                    bad.append(f"{phase} 'default' (strongSwan's own list, not the profile's)")
                elif outside := allowed.outside(proposal):
                    bad.append(f"{phase} {proposal} ({', '.join(outside)})")
        out.append(
            result(
                "template proposals",
                conn,
                f"only what the {p.profile.name} profile allows",
                ", ".join(f"{ph} {', '.join(v)}" for ph, v in phases.items()),
                verdict(not bad),
                f"offers outside the {p.profile.name} profile: {'; '.join(bad)}" if bad else "",
            )
        )
    return out + template_rules.check(conf, p.profile)


# the lab ----------------------------------------------------------------------------------
def _tunnel_sas(running: RunningLab, side: str = "provider") -> dict[str, dict]:
    """tunnel -> the IKE SA for it on its ``side`` ("provider" or "customer"; {} if none)."""
    lab = running.lab
    ends = {t.name: getattr(t, side).node for t in lab.tunnels.values()}
    sas = by_key(lambda n: running.charon(n).ike_sas(), sorted(set(ends.values())))
    return {t: tunnel_sa(lab, t, node, sas[node]) or {} for t, node in ends.items()}


def tunnels_up(running: RunningLab, bringup_error: str | None) -> list[CheckResult]:
    problems = tunnel_problems(running)
    out = []
    for t in running.lab.tunnels.values():
        mine = [str(p.text) for p in problems if p.tunnel == t.name]
        out.append(
            result(
                "tunnel up",
                t.name,
                "IKE SA established, CHILD_SAs installed on both gateways",
                "; ".join(mine) or "established and installed",
                verdict(not mine),
                _cause(bringup_error, t.name) if mine else "",
            )
        )
    return out


def _cause(error: str | None, tunnel: str) -> str:
    """The bring-up's diagnosis lines for ``tunnel`` (its 'cause:' lines)."""
    if not error:
        return ""
    causes = [
        line.strip().removeprefix("cause: ")
        for line in error.splitlines()
        if line.strip().startswith("cause:") and (tunnel in line or "tunnel" not in line)
    ]
    return "; ".join(causes) or error.splitlines()[0]


def proposals(running: RunningLab, plan: Plan) -> list[CheckResult]:
    """What each tunnel negotiated (as vici reports it), inside the profile's policy."""
    out = []
    for name, sa in _tunnel_sas(running).items():
        if sa.get("state") != "ESTABLISHED":
            out.append(result("proposals", name, "negotiated SAs", "no SA", "skip", "tunnel down"))
            continue
        seen = [("ike", keywords(sa), plan.profile.ike)]
        seen += [
            ("esp", keywords(c), plan.profile.esp)
            for c in sa.get("child-sas", {}).values()
            if c.get("state") == "INSTALLED"
        ]
        bad = [f"{ph} {kw}: {', '.join(a.outside(kw))}" for ph, kw, a in seen if a.outside(kw)]
        out.append(
            result(
                "proposals",
                name,
                f"inside the {plan.profile.name} profile's policy",
                ", ".join(f"{ph} {kw}" for ph, kw, _ in seen),
                verdict(not bad),
                "; ".join(bad),
            )
        )
    return out


def lifetimes(running: RunningLab, plan: Plan) -> list[CheckResult]:
    """The lifetimes the customer's gateway runs with, as its charon counts them down (vici:
    seconds to the IKE rekey or reauthentication, to each CHILD_SA's rekey), within the
    profile's limits. Time already passed and strongSwan's jitter only lower them, so the
    upper limit is what is checked here; the template check holds both."""
    p = plan.profile
    out = []
    for name, sa in _tunnel_sas(running, "customer").items():
        if sa.get("state") != "ESTABLISHED":
            out.append(result("lifetimes", name, "negotiated SAs", "no SA", "skip", "tunnel down"))
            continue
        ike = next((int(sa[k]) for k in ("rekey-time", "reauth-time") if sa.get(k)), None)
        children = [
            (c.get("name", "?"), int(c["rekey-time"]) if c.get("rekey-time") else None)
            for c in sa.get("child-sas", {}).values()
            if c.get("state") == "INSTALLED"
        ]
        bad = []
        if ike is None:
            bad.append("the IKE SA is never rekeyed")
        elif ike > p.lifetimes.ike.max:
            bad.append(
                f"IKE rekeys in {ike} s: above the {p.name} profile's {p.lifetimes.ike.max} s"
            )
        for child, left in children:
            if left is None:
                bad.append(f"{child} is never rekeyed")
            elif left > p.lifetimes.child.max:
                bad.append(
                    f"{child} rekeys in {left} s: above the {p.name} profile's "
                    f"{p.lifetimes.child.max} s"
                )
        seen = [f"IKE rekey in {ike} s" if ike is not None else "IKE never rekeyed"]
        seen += [f"{c} rekey in {left} s" for c, left in children]
        out.append(
            result(
                "lifetimes",
                name,
                f"IKE at most {p.lifetimes.ike.max} s, CHILD at most {p.lifetimes.child.max} s "
                f"on the customer's gateway ({p.name} profile)",
                ", ".join(seen),
                verdict(not bad),
                "; ".join(bad),
            )
        )
    return out


def routes(running: RunningLab, plan: Plan) -> list[CheckResult]:
    return (
        _static_routes(running, plan)
        if plan.form.routing == "static"
        else _bgp_routes(running, plan)
    )


def _static_routes(running: RunningLab, plan: Plan) -> list[CheckResult]:
    """The selectors each tunnel negotiated: the services' subnets on the provider's side,
    the form's subnets on the customer's."""
    out = []
    sas = _tunnel_sas(running)
    for t in plan.lab.tunnels.values():
        children = [
            c for c in sas[t.name].get("child-sas", {}).values() if c.get("state") == "INSTALLED"
        ]
        local = {IPv4Network(n) for c in children for n in c.get("local-ts", [])}
        remote = {IPv4Network(n) for c in children for n in c.get("remote-ts", [])}
        want_local, want_remote = set(t.provider.ts), set(t.customer.ts)
        missing = [f"provider side {n}" for n in sorted(want_local - local)]
        missing += [f"customer side {n}" for n in sorted(want_remote - remote)]
        out.append(
            result(
                "routes",
                t.name,
                f"selectors {_nets(want_local)} <-> {_nets(want_remote)}",
                f"selectors {_nets(local)} <-> {_nets(remote)}" if children else "no CHILD_SA",
                verdict(not missing and bool(children)),
                f"the negotiated selectors leave out {', '.join(missing)}" if missing else "",
            )
        )
    return out


def _bgp_routes(running: RunningLab, plan: Plan) -> list[CheckResult]:
    """Each side learns the other's prefixes over each tunnel's BGP session."""
    out = []
    tables = by_key(
        lambda n: running.frr(n).show("show bgp ipv4 unicast").get("routes", {}),
        sorted({GATEWAY, *(t.provider.node for t in plan.lab.tunnels.values())}),
    )
    for t in plan.lab.tunnels.values():
        for side, node, peer, want in (
            ("provider", t.provider.node, t.customer, plan.form.subnets),
            ("customer", GATEWAY, t.provider, [n for n in t.provider.ts if n.prefixlen < 32]),
        ):
            learned = {
                IPv4Network(prefix)
                for prefix, paths in tables[node].items()
                if any(p.get("peerId") == str(peer.inside.ip) for p in paths)
            }
            missing = sorted(set(want) - learned)
            out.append(
                result(
                    "routes",
                    f"{t.name} {side}",
                    f"{side} learns {_nets(want)} from {peer.inside.ip}",
                    f"learned {_nets(learned)}",
                    verdict(not missing),
                    f"not announced over {t.name}: {_nets(missing)}" if missing else "",
                )
            )
    return out


def _nets(nets) -> str:
    return ", ".join(str(n) for n in sorted(nets)) or "none"


def _through(running: RunningLab, plan: Plan, dst) -> tuple[str, PingResult, dict[str, int]]:
    """Ping ``dst`` from the first customer host: (that host, the result, tunnel -> the
    packets the provider decrypted meanwhile)."""
    lab = plan.lab
    src, _ = hosts_behind(lab, next(iter(lab.tunnels.values())).customer)[0]
    pinged, carried = ping_carried(running, src, dst, COUNT)
    return (
        src,
        pinged,
        {t.name: carried[(t.name, t.provider.node)][0] for t in lab.tunnels.values()},
    )


def services(running: RunningLab, plan: Plan) -> list[CheckResult]:
    """Every service the form lists answers from a customer host, through its own tunnel
    (split profiles) and not through the other, as the provider's SA counters show."""
    lab = plan.lab
    out = []
    for name in plan.services:
        svc = plan.profile.services[name]
        own = f"tunnel{svc.tunnel}" if svc.tunnel else None
        src, pinged, grew = _through(running, plan, svc.host)
        if own:
            # Its own tunnel carried every request; another at most its BGP keepalives.
            expected = f"{COUNT}/{COUNT} replies, through {own} only"
            others = [n for t, n in grew.items() if t != own]
            ok = pinged.received == COUNT and grew[own] >= COUNT and all(n < COUNT for n in others)
        else:
            # Each request is a ping of its own (a flow of its own): with two BGP paths
            # the gateways may spread them over both tunnels.
            expected = f"{COUNT}/{COUNT} replies, through the tunnels"
            ok = pinged.received == COUNT and sum(grew.values()) >= COUNT
        why = ""
        if not ok:
            covering = [
                t.name
                for t in lab.tunnels.values()
                if any(svc.subnet.subnet_of(n) for n in t.provider.ts)
            ]
            why = (
                f"{svc.subnet} should be carried by {own or ' or '.join(covering)}; "
                f"see the routes check for what the tunnels negotiated"
            )
        out.append(
            result(
                "service",
                f"{name} ({svc.host})",
                expected,
                f"{pinged.received}/{pinged.sent} replies from {src}, "
                f"decrypted by the provider per tunnel: {grew}",
                verdict(ok),
                why,
            )
        )
    return out


def failover(running: RunningLab, plan: Plan, tunnels_ok: bool) -> list[CheckResult]:
    """The tunnel the customer's traffic takes fails (its gateways stop hearing each other);
    traffic moves to the other within the bound the timers give, and the failed tunnel
    comes back once the fault is cleared."""
    lab = plan.lab
    skip = None
    if len(lab.tunnels) < 2:
        skip = ("a second tunnel", "one tunnel", "nothing to fail over to")
    elif plan.profile.split():
        skip = (
            "-",
            f"{plan.profile.name} splits services between the tunnels",
            "each tunnel carries its own services: there is no failover between them",
        )
    elif not tunnels_ok:
        skip = ("both tunnels up", "not all up", "needs both tunnels")
    if skip:
        return [result("failover", "tunnels", *skip[:2], "skip", skip[2])]
    active = _active_tunnel(running, plan)
    other = next(t for t in lab.tunnels if t != active)
    m = failover_ops.measure(running, active, "block")
    r = m.result
    ok = (r.longest is None or r.longest.recovered) and m.bound.holds(r.outage)
    out = [
        result(
            "failover",
            f"{active} -> {other}",
            f"outage at most {m.bound}",
            r.summary(),
            verdict(ok),
            "" if ok else _failover_why(running, active, m.bound.seconds, r.outage),
        )
    ]
    expected = "back once the fault is cleared"
    try:
        took = failover_ops.restore(running)
    except WaitTimeout as exc:
        seen = str(exc).splitlines()[-1]
        why = _failover_why(running, active, None, None)
        out.append(result("failover", f"{active} recovery", expected, seen, "fail", why))
    else:
        out.append(result("failover", f"{active} recovery", expected, f"after {took:.1f}s", "pass"))
    return out


def _active_tunnel(running: RunningLab, plan: Plan) -> str:
    """The tunnel the customer's traffic to the first service takes now (the provider's
    SA counters say which decrypted it); tunnel1 if none did."""
    _, _, grew = _through(running, plan, plan.profile.services[plan.services[0]].host)
    busiest = max(grew, key=grew.__getitem__)
    return busiest if grew[busiest] else next(iter(grew))


def _failover_why(
    running: RunningLab, tunnel: str, bound: float | None, outage: float | None
) -> str:
    """Why traffic did not move (or come back): the customer's loaded config, as vici says."""
    conns = running.charon(GATEWAY).list_conns()
    silent = [name for name, c in conns.items() if not _seconds(c.get("dpd_delay"))]
    if silent:
        return (
            f"the customer's swanctl.conf runs {', '.join(silent)} without DPD (no dpd_delay): "
            f"its side never notices that {tunnel} is dead and keeps using its SA"
        )
    if outage is not None:
        return f"the outage ({outage:.1f}s) outlasted what the timers allow ({bound}s)"
    return f"{tunnel} did not come back within 30s of the fault being cleared"


def _seconds(value: object) -> int:
    try:
        return int(str(value or "0").rstrip("s"))
    except ValueError:
        return 0


def nat_egress(running: RunningLab, plan: Plan) -> list[CheckResult]:
    """A provider host reaches an internet host, which sees the NAT gateway's public IP."""
    egress = plan.profile.nat_egress
    if egress is None:
        return []
    lab = plan.lab
    public = _internet_address(plan, egress.gateway)
    probe = _internet_address(plan, egress.probe)
    src = next(
        n.name
        for n in lab.nodes.values()
        if n.role == "host" and n.site_kind == "provider" and n.site != CUSTOMER_SITE
    )
    count(
        running, egress.probe, {"from_nat": f"ip saddr {public}", "icmp": "icmp type echo-request"}
    )
    pinged = ping(running, src, probe, COUNT)
    seen = counted(running, egress.probe)
    ok = pinged.received == COUNT and seen["from_nat"] == seen["icmp"] == COUNT
    return [
        result(
            "nat egress",
            f"{src} -> {egress.probe}",
            f"{COUNT}/{COUNT} replies, every request from {public}",
            f"{pinged.received}/{pinged.sent} replies; {egress.probe} saw {seen['icmp']} requests, "
            f"{seen['from_nat']} from {public}",
            verdict(ok),
        )
    ]


def _internet_address(plan: Plan, node: str) -> str:
    iface = next(i for i in plan.lab.nodes[node].interfaces if i.segment == "internet")
    return str(iface.address.ip)
