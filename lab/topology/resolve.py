"""Raw topology -> resolved Lab: cross-references checked, everything derived."""

from __future__ import annotations

import os
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import NamedTuple

from pydantic import SecretStr

from lab.core.errors import InputError, TopologyError
from lab.topology import model, schema
from lab.topology.choices import DEFAULT_MODE, ROUTE
from lab.topology.profiles import check_profile, load_profile

FORWARDING_ROLES = {"vpn-gateway", "router", "nat-gateway"}
DEFAULTS = schema.TunnelSettings(
    ike=2,
    ike_proposals=["aes256-sha256-modp2048"],
    esp_proposals=["aes256-sha256-modp2048"],
    ike_lifetime=8 * 3600,
    child_lifetime=3600,
    dpd=schema.Dpd(),
    inactivity=0,
)
BGP_KEEPALIVE, BGP_HOLD = schema.BGP_KEEPALIVE, schema.BGP_HOLD
# Inside a site the lab's iBGP is fast: a dead gateway must not hold traffic for 30 s.
IBGP_KEEPALIVE, IBGP_HOLD = 1, 3
INTERNAL_ASN = 64512  # a statically routed site still runs iBGP between gateways and routers


def resolve(topo: schema.Topology, source: str = "") -> model.Lab:
    env = _env_file(topo, source)
    endpoint = _provider_endpoint(topo)
    _check_segments(topo)
    node_site = _node_sites(topo)
    sites = _site_kinds(topo)
    members = _segment_members(topo, node_site)
    for name, t in topo.tunnels.items():
        _check_ends(topo, name, t, node_site, sites)
    outsides = {name: _outsides(topo, name, t, node_site) for name, t in topo.tunnels.items()}
    # The segment between a gateway and its site's NAT is outside: never a routed prefix.
    behind_nat = {
        (node_site[o.node], o.segment)
        for pair in outsides.values()
        for o in pair.values()
        if o.nat is not None
    }
    prefixes = {
        name: _site_prefixes(topo, name, members, node_site, behind_nat) for name in topo.sites
    }
    _check_prefixes_disjoint(topo, prefixes, sites)
    tunnels = {
        name: _tunnel(topo, name, t, node_site, prefixes, outsides[name], env, endpoint)
        for name, t in topo.tunnels.items()
    }
    _check_inside_disjoint(tunnels)
    nodes = _nodes(topo, node_site, sites, members, tunnels, prefixes, outsides, source)
    provider = next(n for n, kind in sites.items() if kind == "provider")
    lab = model.Lab(
        name=topo.name,
        source=source,
        profile=topo.sites[provider].provider or "generic",
        runtime=topo.runtime,
        dataplane=topo.dataplane,
        retransmit=model.Retransmit(**topo.retransmit.model_dump()),
        segments=dict(topo.segments),
        nodes=nodes,
        tunnels=tunnels,
        exceptions=tuple(topo.sites[provider].exceptions),
    )
    check_profile(lab, f"sites.{provider}.provider")
    return lab


def _env_file(topo: schema.Topology, source: str) -> dict[str, str]:
    """The topology's env_file as KEY=VALUE pairs (keys for ``{env: VAR}``). It holds
    secrets, so a file others may read is refused rather than used."""
    if topo.env_file is None:
        return {}
    path = Path(source).parent / topo.env_file if source else Path(topo.env_file)
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise TopologyError("env_file", f"cannot read {topo.env_file}: {why}") from None
    if mode & 0o077:
        raise TopologyError(
            "env_file", f"{topo.env_file} holds keys but others may read it (chmod 600 it)"
        )
    out = {}
    for n, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep or not schema.re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key.strip()):
            raise TopologyError("env_file", f"{topo.env_file} line {n}: not KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[key.strip()] = value
    return out


def _provider_endpoint(topo: schema.Topology) -> schema.TunnelSettings | None:
    """The provider profile's endpoint behaviour (None without one, or when the profile
    is unknown: check_profile reports that, naming the field)."""
    names = [s.provider for s in topo.sites.values() if s.provider]
    if len(names) != 1:
        return None
    try:
        profile = load_profile(names[0])
    except InputError:
        return None
    return profile.endpoint.settings() if profile.endpoint else None


def _check_margin(s: dict, field: str) -> None:
    margin = s.get("rekey_margin") or 0
    for which in ("ike_lifetime", "child_lifetime"):
        if margin and margin >= s[which]:
            raise TopologyError(
                field, f"rekey margin {margin}s must be shorter than {which} ({s[which]}s)"
            )


def _check_segments(topo: schema.Topology) -> None:
    items = list(topo.segments.items())
    for i, (a, net_a) in enumerate(items):
        for b, net_b in items[i + 1 :]:
            if net_a.overlaps(net_b):
                raise TopologyError(
                    f"segments.{b}", f"subnet {net_b} overlaps segment {a} ({net_a})"
                )


def _node_sites(topo: schema.Topology) -> dict[str, str]:
    node_site: dict[str, str] = {}
    for site_name, site in topo.sites.items():
        for node in site.nodes:
            field = f"sites.{site_name}.nodes.{node}"
            if not schema.re.match(schema.NAME, node):
                raise TopologyError(
                    field,
                    "node names are lowercase letters, digits and '-', "
                    "start with a letter, at most 15 characters",
                )
            if node in node_site:
                raise TopologyError(field, f"duplicate node name (also in site {node_site[node]})")
            node_site[node] = site_name
    return node_site


def _site_kinds(topo: schema.Topology) -> dict[str, str]:
    kinds = {n: ("provider" if s.provider else "customer") for n, s in topo.sites.items()}
    providers = [n for n, k in kinds.items() if k == "provider"]
    if len(providers) != 1:
        raise TopologyError(
            "sites", f"exactly one site must set 'provider: <profile>' (found {len(providers)})"
        )
    if len(kinds) < 2:
        raise TopologyError("sites", "a lab needs a provider site and at least one customer site")
    return kinds


def _segment_members(topo: schema.Topology, node_site: dict[str, str]) -> dict[str, list[str]]:
    members: dict[str, list[str]] = {s: [] for s in topo.segments}
    seen: dict[tuple[str, IPv4Address], str] = {}
    for site_name, site in topo.sites.items():
        for node_name, node in site.nodes.items():
            for seg, addr in node.interfaces.items():
                field = f"sites.{site_name}.nodes.{node_name}.interfaces.{seg}"
                if seg not in topo.segments:
                    raise TopologyError(
                        field, f"unknown segment {seg!r}; segments: {', '.join(topo.segments)}"
                    )
                net = topo.segments[seg]
                if addr not in net or addr in (net.network_address, net.broadcast_address):
                    raise TopologyError(
                        field, f"address {addr} is not a host address of segment {seg} ({net})"
                    )
                if (seg, addr) in seen:
                    raise TopologyError(
                        field,
                        f"address {addr} is already used by {seen[(seg, addr)]} on segment {seg}",
                    )
                seen[(seg, addr)] = node_name
                members[seg].append(node_name)
    return members


def _site_prefixes(
    topo, site_name, members, node_site, outside: set[tuple[str, str]] | None = None
) -> list[IPv4Network]:
    site = topo.sites[site_name]
    if site.prefixes is not None:
        return list(site.prefixes)
    # A segment is the site's own when only the site's nodes sit on it (and it is not the
    # outside segment between a VPN gateway and its site's NAT gateway).
    return [
        topo.segments[seg]
        for seg, nodes in members.items()
        if nodes
        and all(node_site[n] == site_name for n in nodes)
        and (site_name, seg) not in (outside or set())
    ]


def _announced(node: str, tunnels: list[model.Tunnel]) -> list[IPv4Network]:
    """What a gateway announces over BGP: what its BGP tunnels carry on its side (their
    selectors, without the inside addresses), so that no peer routes a subnet into a
    tunnel whose SA does not carry it (a split profile's gateways carry different ones)."""
    out: list[IPv4Network] = []
    for t in tunnels:
        if t.routing != "bgp":
            continue
        ep = t.side(node)[0]
        inside = IPv4Network(f"{ep.inside.ip}/32") if ep.inside else None
        out += [net for net in ep.ts if net != inside and net not in out]
    return out


def _check_prefixes_disjoint(
    topo: schema.Topology, prefixes: dict[str, list[IPv4Network]], kinds: dict[str, str]
) -> None:
    provider = next(n for n, k in kinds.items() if k == "provider")
    for site, nets in prefixes.items():
        if site == provider:
            continue
        # Segments never overlap, so one side's explicit 'prefixes:' is what clashes.
        culprit = site if topo.sites[site].prefixes is not None else provider
        for net in nets:
            for theirs in prefixes[provider]:
                if net.overlaps(theirs):
                    raise TopologyError(
                        f"sites.{culprit}.prefixes",
                        f"customer network {net} (site {site}) overlaps the "
                        f"provider's {theirs}; the VPN needs disjoint "
                        "address space",
                    )


def _merged(*layers: schema.TunnelSettings | None) -> dict:
    out: dict = {}
    for layer in layers:
        if layer is not None:
            out.update(
                {
                    k: v
                    for k, v in layer.model_dump(exclude_none=True).items()
                    if k in schema.TunnelSettings.model_fields
                }
            )
            if layer.psk is not None:
                out["psk"] = layer.psk
            if layer.dpd is not None:
                out["dpd"] = layer.dpd
    return out


def _psk(value, field: str, env: dict[str, str] | None = None) -> SecretStr:
    if value is None:
        raise TopologyError(field, "missing pre-shared key: set psk: <key> or psk: {env: VAR}")
    if isinstance(value, schema.Psk):
        key = os.environ.get(value.env) or (env or {}).get(value.env)
        if not key:
            where = " nor in env_file" if env else ""
            raise TopologyError(
                field, f"environment variable {value.env} (the PSK) is not set{where}"
            )
        return SecretStr(key)
    if not value.get_secret_value():
        raise TopologyError(field, "the pre-shared key is empty")
    return value


class Outside(NamedTuple):
    """Where a tunnel end meets the world: its own address, and the one its peer sees."""

    node: str
    segment: str  # the segment its own (local) address is on
    local: IPv4Address  # charon's local_addrs
    public: IPv4Address  # what the peer connects to: its site NAT's address, if behind one
    nat: IPv4Address | None  # that NAT gateway's address on ``segment`` (the next hop)
    id: str  # IKE identity, the same on both sides


class _Presence(NamedTuple):
    segment: str  # where the gateway can be reached
    seen_as: IPv4Address
    own_segment: str  # the gateway's own segment that leads there
    nat: IPv4Address | None


def _presence(topo, node: str, node_site) -> list[_Presence]:
    """Segments a gateway is reachable on: its own, then those of its site's NAT gateways."""
    site = topo.sites[node_site[node]]
    mine = site.nodes[node].interfaces
    out = [_Presence(seg, addr, seg, None) for seg, addr in mine.items()]
    for seg in mine:
        for nat in site.nodes.values():
            if nat.role == "nat-gateway" and seg in nat.interfaces:
                out += [
                    _Presence(outer, addr, seg, nat.interfaces[seg])
                    for outer, addr in nat.interfaces.items()
                    if outer not in mine
                ]
    return out


def _outsides(topo, name: str, t: schema.Tunnel, node_site) -> dict[str, Outside]:
    """Both ends' addresses: on a segment where both ends are present, directly if they can
    be, else through a NAT gateway of an end's own site (the peer then sees the NAT)."""
    ends = (("provider", t.provider, t.customer), ("customer", t.customer, t.provider))
    here, there = (_presence(topo, side.node, node_site) for _, side, _ in ends)
    pairs = sorted(
        ((a, b) for a in here for b in there if a.segment == b.segment),
        key=lambda p: (p[0].nat is not None) + (p[1].nat is not None),
    )
    out = {}
    for i, (role, side, peer) in enumerate(ends):
        mine = topo.sites[node_site[side.node]].nodes[side.node].interfaces
        if pairs:
            p = pairs[0][i]
            seg, public, nat = p.own_segment, p.seen_as, p.nat
        elif side.address in mine.values():  # not linked in the lab, but named: trust it
            seg = next(s for s, addr in mine.items() if addr == side.address)
            public, nat = side.address, None
        else:
            raise TopologyError(
                f"tunnels.{name}.{role}.address",
                f"{side.node} and {peer.node} share no segment, and no NAT "
                "gateway of either site links them; set the outside address "
                "explicitly (address: ...)",
            )
        public = side.address or public
        out[role] = Outside(side.node, seg, mine[seg], public, nat, side.id or str(public))
    return out


def default_start_action(role: str, ike: int, inactivity: int) -> str:
    """The customer initiates. The provider waits, except where Tray's rule makes it act:
    with IKEv1 it re-initiates on interesting traffic once inactivity has closed the SA
    (a trap policy: traffic raises an acquire, charon initiates); with IKEv2 keeping the
    tunnel alive is the customer's job (a long-running ping), so the provider never does.
    Only with an inactivity timeout: a trap keeps the gateway's routes to the customer in
    place while the SA is down, which would hold traffic on a dead tunnel in failover."""
    if role == "customer":
        return "start"
    return "trap" if ike == 1 and inactivity else "none"


def _check_ends(topo, name, t: schema.Tunnel, node_site, kinds) -> None:
    field = f"tunnels.{name}"
    # Both ends must be sound before either is derived (deriving one end reads the other).
    for role, side in (("provider", t.provider), ("customer", t.customer)):
        f = f"{field}.{role}"
        site = node_site.get(side.node)
        if site is None:
            raise TopologyError(f, f"unknown node {side.node!r}")
        if kinds[site] != role:
            raise TopologyError(
                f, f"{side.node} is in {kinds[site]} site {site}, not a {role} site"
            )
        node = topo.sites[site].nodes[side.node]
        if node.role != "vpn-gateway":
            raise TopologyError(
                f, f"{side.node} has role {node.role}; tunnels end on a vpn-gateway"
            )


def _tunnel(
    topo,
    name,
    t: schema.Tunnel,
    node_site,
    prefixes,
    outside: dict[str, Outside],
    env: dict[str, str],
    endpoint: schema.TunnelSettings | None,
) -> model.Tunnel:
    field = f"tunnels.{name}"
    routing = t.routing or topo.routing
    endpoints = {}
    for role, side in (("provider", t.provider), ("customer", t.customer)):
        f = f"{field}.{role}"
        site = node_site[side.node]
        profile_side = endpoint if role == "provider" else None
        s = _merged(DEFAULTS, profile_side, topo.tunnel_defaults, t, side)
        _check_margin(s, f"{f}.rekey_margin")
        s.setdefault("start_action", default_start_action(role, s["ike"], s["inactivity"]))
        s.setdefault("close_action", "none")
        if s["dpd"].delay and s["dpd"].action == "restart" and role == "provider":
            s["dpd"] = s["dpd"].model_copy(update={"action": "clear"})
        asn = topo.sites[site].asn
        inside = None
        if routing == "bgp":
            if t.inside is None:
                raise TopologyError(
                    f"{field}.inside", "BGP routing needs an inside /30 from 169.254.0.0/16"
                )
            if asn is None:
                raise TopologyError(
                    f"sites.{site}.asn", f"tunnel {name} uses BGP: the site needs an ASN"
                )
            hosts = list(t.inside.hosts())
            inside = IPv4Interface(f"{hosts[0 if role == 'provider' else 1]}/30")
        own = side.subnets if side.subnets is not None else prefixes[site]
        if not own:
            raise TopologyError(
                f"{f}.subnets", f"site {site} has no subnets to route; add a segment or set subnets"
            )
        ts = ([IPv4Network(f"{inside.ip}/32")] if inside else []) + list(own)
        endpoints[role] = model.Endpoint(
            node=side.node,
            address=outside[role].local,
            public_address=outside[role].public,
            id=outside[role].id,
            ts=ts,
            inside=inside,
            asn=asn,
            ike=s["ike"],
            ike_proposals=s["ike_proposals"],
            esp_proposals=s["esp_proposals"],
            ike_lifetime=s["ike_lifetime"],
            child_lifetime=s["child_lifetime"],
            rekey_margin=s.get("rekey_margin", 0),
            rekey_fuzz=s.get("rekey_fuzz", 100),
            dpd=model.Dpd(**s["dpd"].model_dump()),
            start_action=s["start_action"],
            close_action=s["close_action"],
            inactivity=s["inactivity"],
            psk=_psk(s.get("psk"), f"{field}.psk", env),
        )
    if routing == "bgp":
        _check_ebgp(topo, name, node_site[t.provider.node], node_site[t.customer.node])
    keepalive = t.keepalive or BGP_KEEPALIVE
    hold = t.hold or (BGP_HOLD if t.keepalive is None else 3 * keepalive)
    mode = t.mode or DEFAULT_MODE[routing]
    if mode == ROUTE and routing == "static":
        raise TopologyError(
            f"{field}.mode",
            "route-based tunnels need BGP (routing: bgp) to choose the tunnel; static "
            "routing is policy-based here (mode: policy)",
        )
    return model.Tunnel(
        name=name, routing=routing, mode=mode, keepalive=keepalive, hold=hold, **endpoints
    )


def _check_ebgp(topo: schema.Topology, tunnel: str, provider: str, customer: str) -> None:
    asn = topo.sites[customer].asn
    if asn is not None and asn == topo.sites[provider].asn:
        raise TopologyError(
            f"sites.{customer}.asn",
            f"{asn} is also provider site {provider}'s ASN: tunnel {tunnel}'s "
            "BGP session would be iBGP, not eBGP (give each side its own ASN)",
        )


def _check_inside_disjoint(tunnels: dict[str, model.Tunnel]) -> None:
    seen: dict[IPv4Network, str] = {}
    for t in tunnels.values():
        if t.provider.inside is None:
            continue
        net = t.provider.inside.network
        if net in seen:
            raise TopologyError(
                f"tunnels.{t.name}.inside", f"{net} is already used by tunnel {seen[net]}"
            )
        seen[net] = t.name


def _nodes(
    topo,
    node_site,
    kinds,
    members,
    tunnels,
    prefixes,
    outsides: dict[str, dict[str, Outside]],
    source: str,
) -> dict[str, model.Node]:
    nodes: dict[str, model.Node] = {}
    nat_hop = {o.node: o.nat for pair in outsides.values() for o in pair.values() if o.nat}
    for site_name, site in topo.sites.items():
        for name, raw in site.nodes.items():
            ifaces = [
                model.Interface(
                    name=seg,
                    segment=seg,
                    address=IPv4Interface(f"{addr}/{topo.segments[seg].prefixlen}"),
                )
                for seg, addr in raw.interfaces.items()
            ]
            own = [t for t in tunnels.values() if name in (t.provider.node, t.customer.node)]
            routes = [model.StaticRoute(to=r.to, via=r.via) for r in raw.routes]
            gateway = raw.gateway
            if gateway is None and not any(r.to.prefixlen == 0 for r in raw.routes):
                gateway = _default_gateway(topo, site_name, name, raw, members, nat_hop.get(name))
            if gateway is not None:
                routes.append(model.StaticRoute(to=IPv4Network("0.0.0.0/0"), via=gateway))
            if raw.role == "nat-gateway":
                routes += _nat_return_routes(
                    topo, site_name, name, raw, members, prefixes[site_name]
                )
            neighbors = [_tunnel_neighbor(t, name) for t in own if t.routing == "bgp"]
            redistribute: list[IPv4Network] = []
            if raw.role == "router":
                neighbors += _router_ibgp(topo, site_name, raw, tunnels)
            elif own:
                ibgp = _gateway_ibgp(topo, site_name, raw, _preference(name, tunnels))
                neighbors += ibgp
                if ibgp:
                    redistribute = [
                        n for t in own if t.routing == "static" for n in t.side(name)[1].ts
                    ]
            bgp = None
            if neighbors:
                bgp = model.Bgp(
                    asn=site.asn or INTERNAL_ASN,
                    router_id=ifaces[0].address.ip,
                    networks=_announced(name, own),
                    neighbors=neighbors,
                    redistribute_tunnel_routes=redistribute,
                )
            supplied = _supplied(topo, site_name, name, raw, bool(own), bgp is not None, source)
            nodes[name] = model.Node(
                name=name,
                site=site_name,
                site_kind=kinds[site_name],
                role=raw.role,
                release=raw.release,
                interfaces=ifaces,
                routes=routes,
                forwarding=raw.role in FORWARDING_ROLES,
                charon=bool(own),
                bgp=bgp,
                inside_addresses=[
                    ep.inside for t in own for ep in (t.side(name)[0],) if ep.inside is not None
                ],
                supplied=supplied,
            )
    return nodes


def _supplied(topo, site_name, name, raw, charon: bool, bgp: bool, source: str) -> dict[str, str]:
    """The node's own configuration files, each for a daemon it runs, each readable."""
    out = {}
    for file, given in raw.files.items():
        field = f"sites.{site_name}.nodes.{name}.files.{file}"
        if file == "swanctl.conf" and not charon:
            raise TopologyError(field, f"{name} is in no tunnel: it runs no charon")
        if file == "frr.conf" and not bgp:
            raise TopologyError(field, f"{name} speaks no BGP: it runs no bgpd")
        path = Path(source).parent / given
        try:
            path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise TopologyError(
                field, f"cannot read {given}: {getattr(exc, 'strerror', None) or exc}"
            ) from None
        out[file] = str(path.resolve())
    return out


def _default_gateway(
    topo, site_name, name, raw, members, nat_hop: IPv4Address | None = None
) -> IPv4Address | None:
    """Hosts: their site's router, else its VPN or NAT gateway. A router: its site's NAT
    gateway (non-VPN egress; the remote subnets it learns are more specific). A VPN gateway
    that reaches its peers only through its site's NAT gateway: that NAT gateway."""
    if raw.role == "vpn-gateway":
        return nat_hop
    if raw.role == "router":
        return _beside(topo, site_name, name, raw, members, "nat-gateway")
    if raw.role != "host":
        return None
    for preferred in ("router", "vpn-gateway", "nat-gateway"):
        found = _beside(topo, site_name, name, raw, members, preferred)
        if found is not None:
            return found
    return None


def _beside(topo, site_name, name, raw, members, role: str) -> IPv4Address | None:
    """The address of the first node of ``role`` in the same site on a segment with ``name``."""
    site_nodes = topo.sites[site_name].nodes
    for seg in raw.interfaces:
        for other in members[seg]:
            if other != name and other in site_nodes and site_nodes[other].role == role:
                return site_nodes[other].interfaces[seg]
    return None


def _nat_return_routes(
    topo, site_name, name, raw, members, prefixes: list[IPv4Network]
) -> list[model.StaticRoute]:
    """A NAT gateway routes replies to its site's prefixes it does not sit on back into the
    site: via the site's router beside it, else the site's VPN gateway beside it."""
    hop = _beside(topo, site_name, name, raw, members, "router") or _beside(
        topo, site_name, name, raw, members, "vpn-gateway"
    )
    on = [topo.segments[seg] for seg in raw.interfaces]
    return [
        model.StaticRoute(to=net, via=hop)
        for net in prefixes
        if hop is not None and not any(net.subnet_of(seg) for seg in on)
    ]


def _tunnel_neighbor(t: model.Tunnel, node: str) -> model.BgpNeighbor:
    local, remote = t.side(node)
    return model.BgpNeighbor(
        address=remote.inside.ip,
        remote_as=remote.asn,
        update_source=local.inside.ip,
        keepalive=t.keepalive,
        hold=t.hold,
        tunnel=t.name,
    )


def _site_gateways_beside(topo, site_name, raw) -> Iterable[tuple[str, IPv4Address]]:
    """VPN gateways of the same site that share a segment with this node."""
    for other, node in topo.sites[site_name].nodes.items():
        if node.role != "vpn-gateway":
            continue
        for seg in raw.interfaces:
            if seg in node.interfaces:
                yield other, node.interfaces[seg]
                break


def _preference(gateway: str, tunnels: dict[str, model.Tunnel]) -> int:
    """Local preference a gateway gives its routes: earlier tunnels are primary."""
    order = [
        i for i, t in enumerate(tunnels.values()) if gateway in (t.provider.node, t.customer.node)
    ]
    return 200 - 10 * order[0]


def _router_ibgp(topo, site_name, raw, tunnels) -> list[model.BgpNeighbor]:
    """A router peers with every VPN gateway of its site beside it (the VPC route table
    with route propagation): it learns the remote subnets from whichever tunnel is up."""
    gateways = {ep.node for t in tunnels.values() for ep in (t.provider, t.customer)}
    asn = topo.sites[site_name].asn or INTERNAL_ASN
    # Passive: routers are configured first and wait; gateways connect to a ready listener
    # instead of hitting a reset and backing off for seconds.
    return [
        model.BgpNeighbor(
            address=addr, remote_as=asn, keepalive=IBGP_KEEPALIVE, hold=IBGP_HOLD, passive=True
        )
        for gw, addr in _site_gateways_beside(topo, site_name, raw)
        if gw in gateways
    ]


def _gateway_ibgp(topo, site_name, raw, local_pref: int) -> list[model.BgpNeighbor]:
    """A gateway peers with its site's routers so they learn the remote subnets."""
    asn = topo.sites[site_name].asn or INTERNAL_ASN
    out = []
    for node in topo.sites[site_name].nodes.values():
        if node.role != "router":
            continue
        shared = [seg for seg in raw.interfaces if seg in node.interfaces]
        if shared:
            out.append(
                model.BgpNeighbor(
                    address=node.interfaces[shared[0]],
                    remote_as=asn,
                    update_source=raw.interfaces[shared[0]],
                    next_hop_self=True,
                    keepalive=IBGP_KEEPALIVE,
                    hold=IBGP_HOLD,
                    local_pref_out=local_pref,
                )
            )
    return out
