"""A setup form against its provider's profile: every broken rule an error, every departure
from a recommendation a warning, each naming the form's field."""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import IPv4Network
from typing import Literal

from lab.providers.form import Form, psk_value
from lab.topology.profiles import ROUTED, Profile
from lab.topology.proposals import check_proposal

LINK_LOCAL = IPv4Network("169.254.0.0/16")


@dataclass(frozen=True)
class Finding:
    level: Literal["error", "warning"]
    field: str
    text: str

    def __str__(self) -> str:
        return f"{self.level}: {self.field}: {self.text}"


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.level == "error"]


def check(form: Form, profile: Profile) -> list[Finding]:
    """Everything wrong with ``form`` under ``profile``; [] when it may be sent as it is."""
    out: list[Finding] = []
    for rule in RULES:
        out += rule(form, profile)
    return out


def _error(field: str, text: str) -> Finding:
    return Finding("error", field, text)


def _warning(field: str, text: str) -> Finding:
    return Finding("warning", field, text)


def _profile_fields(form: Form, p: Profile) -> list[Finding]:
    out = []
    for name in form.extras():
        if name not in p.form_fields:
            adds = ", ".join(p.form_fields) or "none"
            out.append(_error(name, f"unknown field (the {p.name} profile adds: {adds})"))
    for name, spec in p.form_fields.items():
        value = form.extras().get(name)
        if value is None:
            if spec.required:
                out.append(_error(name, f"required by the {p.name} profile ({spec.description})"))
            continue
        if spec.kind == "flag":
            if not isinstance(value, bool):
                out.append(_error(name, "is true or false"))
        elif not isinstance(value, str | int) or isinstance(value, bool):
            out.append(_error(name, f"is text ({spec.description})"))
        elif spec.pattern and not re.fullmatch(spec.pattern, str(value)):
            out.append(_error(name, f"{value!r} is not a valid {spec.description}"))
    return out


def _tunnels(form: Form, p: Profile) -> list[Finding]:
    n, r = form.tunnels, p.tunnels
    if not r.min <= n <= r.max:
        what = f"exactly {r.min}" if r.min == r.max else f"{r.min} to {r.max}"
        return [_error("tunnels", f"the {p.name} profile sets up {what} tunnels, not {n}")]
    if r.recommended and n < r.recommended:
        return [
            _warning(
                "tunnels",
                f"{n} tunnel(s): the {p.name} profile recommends {r.recommended}; a tunnel "
                "failure is then an outage",
            )
        ]
    return []


def _routing(form: Form, p: Profile) -> list[Finding]:
    out = []
    exception = p.bgp_exception and form.extras().get(p.bgp_exception) is True
    if form.routing not in p.routing and not (form.routing == "bgp" and exception):
        why = f"the {p.name} profile routes VPNs {' or '.join(ROUTED[r] for r in p.routing)}"
        if form.routing == "bgp" and p.bgp_exception:
            why += f"; BGP only by arrangement: set {p.bgp_exception}: true once it is agreed"
        out.append(_error("routing", why))
    if form.routing == "bgp":
        out += _asn(form, p)
    elif form.asn is not None:
        out.append(_warning("asn", "given, but a statically routed VPN uses no ASN"))
    if form.extras().get("tgw_id") and form.routing != "static":
        out.append(_error("tgw_id", "Transit Gateway attachments are statically routed only"))
    return out


def _asn(form: Form, p: Profile) -> list[Finding]:
    c = p.asn.customer
    if form.asn is None:
        return [_error("asn", "a BGP-routed VPN needs the customer gateway's ASN")]
    if not c.min <= form.asn <= c.max:
        return [_error("asn", f"{form.asn} is outside {c.min}-{c.max}")]
    if form.asn in c.reserved:
        return [_error("asn", f"{form.asn} is reserved by the provider's cloud")]
    if form.asn == p.asn.provider:
        return [_error("asn", f"{form.asn} is the provider's own ASN (eBGP needs two)")]
    return []


def _ike(form: Form, p: Profile) -> list[Finding]:
    if form.ike not in p.ike_versions:
        versions = " or ".join(f"IKEv{v}" for v in p.ike_versions)
        return [_error("ike", f"the {p.name} profile offers {versions}")]
    return []


def _subnets(form: Form, p: Profile) -> list[Finding]:
    out = []
    s = p.subnets
    if form.routing in s.required_with and not form.subnets:
        out.append(
            _error("subnets", f"a {ROUTED[form.routing]} routed VPN needs the customer's subnets")
        )
    provider = {f"{name} service": svc.subnet for name, svc in p.services.items()}
    provider |= {f"lab segment {name}": net for name, net in p.lab.segments.items()}
    for i, net in enumerate(form.subnets):
        field = f"subnets.{i}"
        if net.prefixlen in s.refused:
            out.append(_error(field, f"{net}: a /{net.prefixlen} is not permitted by {p.name}"))
        elif net.prefixlen < s.max_prefix:
            out.append(_error(field, f"{net} is larger than {p.name}'s maximum /{s.max_prefix}"))
        elif s.recommended_prefix and net.prefixlen < s.recommended_prefix:
            out.append(_warning(field, f"{net}: {p.name} recommends a /{s.recommended_prefix}"))
        for what, theirs in provider.items():
            if net.overlaps(theirs):
                out.append(_error(field, f"{net} overlaps the provider's {what} {theirs}"))
                break  # one is enough: the services sit inside the segments
        if net.overlaps(LINK_LOCAL):
            out.append(_error(field, f"{net} overlaps 169.254.0.0/16 (tunnel inside addresses)"))
        if form.gateway_ip in net:
            out.append(_error(field, f"{net} holds the gateway's public IP {form.gateway_ip}"))
        for j, other in enumerate(form.subnets[:i]):
            if net.overlaps(other):
                out.append(_error(field, f"{net} overlaps subnets.{j} ({other})"))
    return out


def _services(form: Form, p: Profile) -> list[Finding]:
    out = []
    for i, name in enumerate(form.services or []):
        if name not in p.services:
            known = ", ".join(p.services)
            out.append(_error(f"services.{i}", f"{name!r} is no {p.name} service ({known})"))
    if form.services is not None and not form.services:
        out.append(_error("services", "names at least one service"))
    return out


def _inside(form: Form, p: Profile) -> list[Finding]:
    if form.inside is None:
        return []
    out = []
    if form.routing != "bgp":
        out.append(_warning("inside", "inside CIDRs are for BGP; a static VPN does not use them"))
    if len(form.inside) != form.tunnels:
        out.append(_error("inside", f"one /30 per tunnel: {form.tunnels}, not {len(form.inside)}"))
    for i, net in enumerate(form.inside):
        field = f"inside.{i}"
        if net.prefixlen != 30 or not net.subnet_of(p.inside.pool):
            out.append(_error(field, f"{net} is not a /30 inside {p.inside.pool}"))
        elif reserved := [r for r in p.inside.reserved if net.overlaps(r)]:
            out.append(_error(field, f"{net} is reserved ({reserved[0]})"))
        if net in form.inside[:i]:
            out.append(_error(field, f"{net} is given twice"))
    return out


def _psk(form: Form, p: Profile) -> list[Finding]:
    """Key rules, worded without the key: a form's PSK never reaches a message."""
    if form.psk is None:
        return []
    out = []
    if len(form.psk) != form.tunnels:
        out.append(_error("psk", f"one key per tunnel: {form.tunnels}, not {len(form.psk)}"))
    rule = p.psk
    for i, given in enumerate(form.psk):
        field = f"psk.{i}"
        key = psk_value(given)
        if key is None:
            out.append(_error(field, f"environment variable {given.env} is not set"))  # type: ignore[union-attr]
            continue
        if not rule.min_length <= len(key) <= rule.max_length:
            out.append(
                _error(field, f"a key is {rule.min_length} to {rule.max_length} characters long")
            )
        if not re.fullmatch(f"[{rule.alphabet}]*", key):
            out.append(_error(field, f"a key may hold only the characters [{rule.alphabet}]"))
        if not rule.leading_zero and key.startswith("0"):
            out.append(_error(field, "a key may not start with 0"))
    return out


def _lifetimes(form: Form, p: Profile) -> list[Finding]:
    out = []
    ike, child = form.lifetimes.ike, form.lifetimes.child
    for field, value, r in (("ike", ike, p.lifetimes.ike), ("child", child, p.lifetimes.child)):
        if value is not None and not r.min <= value <= r.max:
            out.append(
                _error(f"lifetimes.{field}", f"{value}s is outside {r.min}-{r.max}s ({p.name})")
            )
    ike = ike or p.lifetimes.ike.max
    child = child or p.lifetimes.child.max
    if child >= ike:
        out.append(
            _error("lifetimes.child", f"phase 2 ({child}s) must be shorter than phase 1 ({ike}s)")
        )
    return out


def _proposals(form: Form, p: Profile) -> list[Finding]:
    out = []
    for phase, allowed, esp in (("ike", p.ike, False), ("esp", p.esp, True)):
        for i, proposal in enumerate(getattr(form.proposals, phase) or []):
            field = f"proposals.{phase}.{i}"
            if why := check_proposal(proposal, esp=esp):
                out.append(_error(field, why))
                continue
            outside = allowed.outside(proposal)
            if outside:
                out.append(
                    _error(field, f"{proposal}: {', '.join(outside)} not allowed by {p.name}")
                )
    return out


def _egress(form: Form, p: Profile) -> list[Finding]:
    if form.nat_egress and p.nat_egress is None:
        return [_error("nat_egress", f"the {p.name} profile has no NAT gateway")]
    return []


RULES = [
    _profile_fields,
    _tunnels,
    _routing,
    _ike,
    _subnets,
    _services,
    _inside,
    _psk,
    _lifetimes,
    _proposals,
    _egress,
]
