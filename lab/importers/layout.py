"""A customer's tunnel, as the files in a ticket describe it, made into a topology.

The importers (``aws``, ``swanctl``, ``ipsec_conf``) read what the provider
or the customer already has into per-tunnel sides; this module lays them out in the lab:
the provider side on a profile's lab (its gateways, its VPC), the customer gateway with a
host on each of its subnets, public addresses mapped into the lab's internet segment (the
mapping written as a comment), keys as ``{env: VAR}`` with the values in a 0600 env file
beside the topology unless revealed. The topology is validated (resolved) before anything
is written, so bad input creates nothing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import yaml
from pydantic import ValidationError

from lab.core.errors import InputError
from lab.importers.aws import AwsConnection
from lab.providers.plan import (
    CUSTOMER_SITE,
    GATEWAY,
    PUBLIC_SITE,
    customer_site_nodes,
    new_key,
    rehome,
    split_public,
)
from lab.topology.profiles import Profile
from lab.topology.resolve import resolve
from lab.topology.schema import LAB_NAME, PATTERN_RULES, Topology
from lab.topology.yamlfile import validation_errors

PROVIDER_SITE = "provider"
DEFAULT_LAN = IPv4Network("172.16.1.0/24")
CUSTOMER_HOST = 21  # the customer gateway's host number on the lab's internet segment


@dataclass
class CustomerTunnel:
    """One tunnel as the customer's gateway runs it (None: the lab's default)."""

    name: str
    ike: int | None = None
    ike_proposals: list[str] | None = None
    esp_proposals: list[str] | None = None
    ike_lifetime: int | None = None
    child_lifetime: int | None = None
    rekey_margin: int | None = None
    rekey_fuzz: int | None = None
    dpd: dict | None = None
    start_action: str | None = None
    close_action: str | None = None
    inactivity: int | None = None
    psk: str | None = None
    local: IPv4Address | None = None  # its own public address, as the file has it
    peer: IPv4Address | None = None  # the provider endpoint's public address
    local_subnets: list[IPv4Network] = field(default_factory=list)
    remote_subnets: list[IPv4Network] = field(default_factory=list)
    local_id: str | None = None  # only names (FQDN, user@FQDN): addresses are mapped
    remote_id: str | None = None

    def settings(self) -> dict:
        out: dict = {}
        for key in (
            "ike_proposals",
            "esp_proposals",
            "ike_lifetime",
            "child_lifetime",
            "rekey_margin",
            "rekey_fuzz",
            "dpd",
            "start_action",
            "close_action",
            "inactivity",
        ):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.local_id:
            out["id"] = self.local_id
        return out


@dataclass
class ProviderTunnel:
    """The provider's end of one tunnel, where a provider file says it."""

    outside: IPv4Address | None = None
    psk: str | None = None
    inside: IPv4Network | None = None
    id: str | None = None


@dataclass
class Import:
    source: str  # the file imported (for messages and the header)
    kind: str  # what it was: "AWS XML", "swanctl.conf", ...
    name: str
    profile: Profile
    routing: str
    tunnels: list[tuple[CustomerTunnel, ProviderTunnel]]
    customer_subnets: list[IPv4Network]
    provider_subnets: list[IPv4Network]
    customer_asn: int | None = None
    provider_asn: int | None = None
    hold: int | None = None
    warnings: list[str] = field(default_factory=list)
    origin: list[str] = field(default_factory=list)  # header lines: where each side came from


def lab_name(given: str | None, *candidates: str | None) -> str:
    """``given`` (checked), else the first candidate made into a valid lab name."""
    if given:
        if not re.match(LAB_NAME, given):
            raise InputError("--name", PATTERN_RULES[LAB_NAME])
        return given
    for c in candidates:
        if c:
            name = re.sub(r"[^a-z0-9-]+", "-", c.lower()).strip("-")
            name = name if name[:1].isalpha() else f"lab-{name}"
            name = name[:24].rstrip("-")
            if re.match(LAB_NAME, name):
                return name
    return "imported"


def from_aws(
    conn: AwsConnection,
    profile: Profile,
    name: str,
    customer_subnets: list[IPv4Network],
    provider_subnets: list[IPv4Network],
) -> Import:
    """Both sides from one AWS configuration: the customer gateway as AWS tells the customer
    to configure it, AWS's endpoint as the profile says it behaves."""
    pairs = []
    for t in conn.tunnels:
        customer = CustomerTunnel(
            name=f"tunnel{t.number}",
            ike=t.ike,
            ike_proposals=[t.ike_proposal],
            esp_proposals=[t.esp_proposal],
            ike_lifetime=t.ike_lifetime,
            child_lifetime=t.child_lifetime,
            # AWS's advice: DPD every `interval`, give up after `retries` of them.
            dpd={"delay": t.dpd_delay, "timeout": t.dpd_delay * t.dpd_retries},
            psk=t.psk.get_secret_value(),
            local=t.customer_outside,
            peer=t.vgw_outside,
        )
        pairs.append((customer, _aws_provider(conn, t.number)))
    first = conn.tunnels[0]
    return Import(
        source=conn.file,
        kind=f"AWS {'XML' if conn.format == 'xml' else 'Generic text'} configuration",
        name=name,
        profile=profile,
        routing=conn.routing,
        tunnels=pairs,
        customer_subnets=customer_subnets or [DEFAULT_LAN],
        provider_subnets=provider_subnets,
        customer_asn=first.customer_asn,
        provider_asn=first.vgw_asn,
        hold=first.hold,
        warnings=list(conn.warnings),
        origin=[
            f"customer side: the settings {conn.file} gives the customer gateway",
            f"provider side: the {profile.name} profile (AWS's endpoint) with {conn.file}'s "
            "keys and inside addresses",
        ],
    )


def _aws_provider(conn: AwsConnection, number: int) -> ProviderTunnel:
    t = next(t for t in conn.tunnels if t.number == number)
    return ProviderTunnel(
        outside=t.vgw_outside,
        psk=t.psk.get_secret_value(),
        inside=t.vgw_inside.network if t.vgw_inside and conn.routing == "bgp" else None,
    )


def with_provider(
    customer: list[CustomerTunnel],
    aws: AwsConnection | None,
    profile: Profile,
    *,
    source: str,
    kind: str,
    name: str,
    warnings: list[str],
) -> Import:
    """The customer's own tunnels against the provider: AWS's file where given (its keys,
    inside addresses, BGP), else the profile alone (keys: the customer's)."""
    if len(customer) > profile.tunnels.max:
        raise InputError(
            "connections",
            f"{len(customer)} connections; the {profile.name} profile has at most "
            f"{profile.tunnels.max} tunnels (import one customer gateway's tunnels)",
            source,
        )
    warnings = list(warnings)
    pairs: list[tuple[CustomerTunnel, ProviderTunnel]] = []
    routing, asn, provider_asn, hold = "static", None, None, None
    if aws is not None:
        warnings += aws.warnings
        unused = list(aws.tunnels)
        for c in customer:
            match = next((t for t in unused if t.vgw_outside == c.peer), None)
            if match is None:
                match = unused[0]
                warnings.append(
                    f"{c.name}: its peer address {c.peer or '(none)'} is none of {aws.file}'s "
                    f"AWS endpoints; paired with AWS tunnel {match.number} by order"
                )
            unused.remove(match)
            if c.local is None:
                c.local = match.customer_outside
            pairs.append((c, _aws_provider(aws, match.number)))
        for t in unused:
            warnings.append(f"AWS tunnel {t.number} has no customer connection: left out")
        routing = aws.routing
        first = aws.tunnels[0]
        asn, provider_asn, hold = first.customer_asn, first.vgw_asn, first.hold
    else:
        pairs = [(c, ProviderTunnel(outside=c.peer, psk=c.psk)) for c in customer]
    local = _union(c.local_subnets for c in customer)
    remote = _union(c.remote_subnets for c in customer)
    if routing == "bgp":
        # Route-based setups select everything (0.0.0.0/0); the lab's BGP tunnels derive
        # per-tunnel selectors instead (the verified recipe for the userspace data plane).
        for label, nets in (("local", local), ("remote", remote)):
            if any(n.prefixlen == 0 for n in nets):
                warnings.append(
                    f"{label} selectors {', '.join(map(str, nets))}: BGP tunnels in the lab "
                    "use per-tunnel selectors (inside /32 + prefixes) instead"
                )
        local = [n for n in local if n.prefixlen]
        remote = [n for n in remote if n.prefixlen]
    origin = [f"customer side: {source} ({kind})"]
    origin.append(
        f"provider side: the {profile.name} profile with {aws.file}'s keys and inside addresses"
        if aws
        else f"provider side: the {profile.name} profile, keyed with the customer's PSKs"
    )
    return Import(
        source=source,
        kind=kind,
        name=name,
        profile=profile,
        routing=routing,
        tunnels=pairs,
        customer_subnets=local or [DEFAULT_LAN],
        provider_subnets=remote,
        customer_asn=asn,
        provider_asn=provider_asn,
        hold=hold,
        warnings=warnings,
        origin=origin,
    )


def _union(lists: Iterable[list[IPv4Network]]) -> list[IPv4Network]:
    out: list[IPv4Network] = []
    for nets in lists:
        out += [n for n in nets if n not in out]
    return out


# the topology -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Written:
    topology: Path
    env: Path | None
    warnings: list[str]


def build(imp: Import, *, reveal: bool) -> tuple[dict, dict[str, str], list[str]]:
    """(topology data, env file values, header comment lines)."""
    p = imp.profile
    internet = p.lab.internet
    segments: dict[str, str] = {"internet": str(internet)}
    provider_nodes, public_nodes, vpc_prefixes = _provider_nodes(imp, segments)
    mapping: list[str] = []
    taken = {
        IPv4Address(n["interfaces"]["internet"])
        for n in provider_nodes.values()
        if "internet" in n["interfaces"]
    }
    taken |= {IPv4Address(n["interfaces"]["internet"]) for n in public_nodes.values()}
    cgw_public = _free(internet, taken, CUSTOMER_HOST)
    lans, customer_nodes = customer_site_nodes(
        imp.customer_subnets,
        cgw_public,
        lambda _, net: InputError(
            "subnets",
            f"customer subnet {net}: the lab needs room for a gateway and a host",
            imp.source,
        ),
    )
    segments.update(lans)
    locals_seen = sorted({str(c.local) for c, _ in imp.tunnels if c.local})
    for real in locals_seen:
        mapping.append(f"{real:>15} -> {cgw_public}  customer gateway {GATEWAY}")
    provider_site: dict = {"provider": p.name, "nodes": provider_nodes}
    if vpc_prefixes:
        provider_site["prefixes"] = vpc_prefixes
    customer_site: dict = {"nodes": customer_nodes}
    if imp.routing == "bgp":
        provider_site["asn"] = imp.provider_asn or p.asn.provider
        customer_site["asn"] = imp.customer_asn
    sites = {PROVIDER_SITE: provider_site, CUSTOMER_SITE: customer_site}
    if public_nodes:
        sites[PUBLIC_SITE] = {"nodes": public_nodes}
    env: dict[str, str] = {}
    tunnels: dict[str, dict] = {}
    for n, (c, prov) in enumerate(imp.tunnels, start=1):
        tname = f"tunnel{n}"
        gw = p.lab.gateways[n - 1]
        gw_public = p.lab.nodes[gw]["interfaces"]["internet"]
        if prov.outside:
            mapping.append(
                f"{prov.outside!s:>15} -> {gw_public}  {p.name} tunnel {n} endpoint {gw}"
            )
        provider = {
            "node": gw,
            # The provider's endpoint accepts all its profile allows (AWS does, by default).
            "ike_proposals": p.ike.proposals(esp=False),
            "esp_proposals": [
                *p.esp.proposals(esp=True),
                *p.esp.model_copy(update={"dh_groups": []}).proposals(esp=True),
            ],
        }
        if prov.id:
            provider["id"] = prov.id
        elif c.remote_id:
            provider["id"] = c.remote_id
        customer = {"node": GATEWAY, **c.settings()}
        tunnel: dict = {"provider": provider, "customer": customer}
        if c.ike:
            tunnel["ike"] = c.ike
        if imp.routing == "bgp":
            if prov.inside is None:
                raise InputError(f"{tname}.inside", "BGP tunnel without an inside /30", imp.source)
            tunnel["inside"] = str(prov.inside)
            if imp.hold:
                tunnel["keepalive"], tunnel["hold"] = max(1, imp.hold // 3), imp.hold
        else:
            if c.remote_subnets and all(s.prefixlen for s in c.remote_subnets):
                provider["subnets"] = [str(s) for s in c.remote_subnets]
            if c.local_subnets and all(s.prefixlen for s in c.local_subnets):
                customer["subnets"] = [str(s) for s in c.local_subnets]
        _keys(tname, c, prov, tunnel, env, imp, reveal)
        tunnels[tname] = tunnel
    data: dict = {
        "name": imp.name,
        "description": f"imported from {Path(imp.source).name} ({imp.kind})",
        "routing": imp.routing,
        "retransmit": dict(p.lab.retransmit),
        "segments": segments,
        "sites": sites,
        "tunnels": tunnels,
    }
    header = [
        f"Imported by vpnlab from {imp.source} ({imp.kind}).",
        *imp.origin,
        "Public addresses mapped into the lab (file -> lab):",
        *(f"  {m}" for m in mapping),
    ]
    if imp.warnings:
        header += ["Not modelled or changed (vpnlab import warnings):"]
        header += [f"  - {w}" for w in imp.warnings]
    return data, env, header


def _keys(
    tname: str,
    c: CustomerTunnel,
    prov: ProviderTunnel,
    tunnel: dict,
    env: dict[str, str],
    imp: Import,
    reveal: bool,
) -> None:
    var = f"VPNLAB_{tname.upper()}_PSK"
    cust, provider = c.psk, prov.psk
    if cust is None and provider is None:
        cust = provider = new_key(imp.profile)
        imp.warnings.append(f"{tname}: no pre-shared key given; a new one was generated")
    cust = cust if cust is not None else provider
    provider = provider if provider is not None else cust
    if cust == provider:
        env[var] = cust  # type: ignore[assignment]
        tunnel["psk"] = cust if reveal else {"env": var}
        return
    # The two ends hold different keys: the lab shows the mismatch, as the real pair would.
    for side, key in (("provider", provider), ("customer", cust)):
        side_var = f"VPNLAB_{tname.upper()}_{side.upper()}_PSK"
        env[side_var] = key  # type: ignore[assignment]
        tunnel[side]["psk"] = key if reveal else {"env": side_var}


def _provider_nodes(imp: Import, segments: dict[str, str]) -> tuple[dict, dict, list[str]]:
    """The profile's lab nodes, its VPC renumbered into the provider subnets the customer's
    files name (host numbers kept)."""
    p = imp.profile
    own = {k: v for k, v in p.lab.segments.items()}
    prefixes: list[str] = []
    renumber: dict[str, IPv4Network] = {}
    wanted = [n for n in imp.provider_subnets if n.prefixlen]
    if wanted:
        if len(own) != 1:
            raise InputError(
                "--provider",
                f"the {p.name} profile's lab has {len(own)} segments besides the "
                "internet; a VPC can be renumbered only in a one-segment lab",
                imp.source,
            )
        ((seg, net),) = own.items()
        first = wanted[0]
        if first != net:
            if first.prefixlen > 28:
                raise InputError(
                    "remote subnets", f"{first}: the lab's VPC needs at least a /28", imp.source
                )
            renumber[seg] = first
            own[seg] = first
        if len(wanted) > 1:
            prefixes = [str(n) for n in wanted]
            imp.warnings.append(
                f"provider subnets {', '.join(prefixes[1:])}: routed, but no lab host "
                f"sits in them (hosts are in {first})"
            )
    segments.update({k: str(v) for k, v in own.items()})
    nodes = {}
    for node, spec in p.lab.nodes.items():
        spec = {**spec, "interfaces": dict(spec["interfaces"])}
        for seg, net in renumber.items():
            if seg in spec["interfaces"]:
                spec["interfaces"][seg] = str(rehome(IPv4Address(spec["interfaces"][seg]), net))
        nodes[node] = spec
    return (*split_public(nodes), prefixes)


def _free(net: IPv4Network, taken: set[IPv4Address], start: int) -> IPv4Address:
    for host in range(start, net.num_addresses - 1):
        addr = net[host]
        if addr not in taken:
            return addr
    raise InputError("internet", f"no free address in {net}")


def validate(imp: Import, data: dict, env: dict[str, str], output: Path) -> None:
    """Resolve the topology as ``vpnlab up`` will (keys in place of their env names), or
    raise InputError naming the imported file: nothing has been written yet."""
    revealed = _with_keys(data, env)
    try:
        topo = Topology.model_validate(revealed)
    except ValidationError as exc:
        field_, rule = validation_errors(exc)[0]
        raise InputError(f"the lab it makes: {field_}", rule, imp.source) from None
    try:
        resolve(topo, source=str(output))
    except InputError as exc:
        raise InputError(f"the lab it makes: {exc.field}", exc.rule, imp.source) from None


def _with_keys(data: object, env: dict[str, str]) -> object:
    if isinstance(data, dict):
        if set(data) == {"env"} and data["env"] in env:
            return env[data["env"]]
        return {k: _with_keys(v, env) for k, v in data.items()}
    if isinstance(data, list):
        return [_with_keys(v, env) for v in data]
    return data


def collapsed(warnings: list[str]) -> list[str]:
    """One line per message, naming every tunnel it applies to ("tunnels 1, 2: ...")."""
    order: dict[str, list[str]] = {}
    for w in warnings:
        m = re.match(r"tunnel (\d+): (.*)", w)
        key, number = (m[2], m[1]) if m else (w, None)
        order.setdefault(key, [])
        if number:
            order[key].append(number)
    out = []
    for text, numbers in order.items():
        if not numbers:
            out.append(text)
        else:
            which = "tunnel" if len(numbers) == 1 else "tunnels"
            out.append(f"{which} {', '.join(numbers)}: {text}")
    return out


def write(imp: Import, output: Path, *, reveal: bool) -> Written:
    imp.warnings = collapsed(imp.warnings)
    data, env, header = build(imp, reveal=reveal)
    validate(imp, data, env, output)
    env_path = None if reveal else output.with_suffix(".env")
    if env_path is not None:
        data["env_file"] = env_path.name
        header.append(f"Keys: read from {env_path.name} (mode 0600) beside this file.")
    text = "\n".join(f"# {line}".rstrip() for line in header) + "\n"
    text += yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)
    output.parent.mkdir(parents=True, exist_ok=True)
    if env_path is not None:
        lines = "".join(f"{k}={v}\n" for k, v in env.items())
        _private(env_path, "# pre-shared keys of " + output.name + "\n" + lines)
        output.write_text(text)
    else:
        _private(output, text)  # it holds the keys
    return Written(output, env_path, list(imp.warnings))


def _private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)  # an existing file keeps its mode otherwise
        f.write(text)
