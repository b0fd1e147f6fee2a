"""A checked form made concrete: the conformance lab's topology, and the variables the
customer's templates are rendered with, both from one resolved Lab.

The provider's side comes from the profile's ``lab:`` (its gateways, services, NAT gateway),
configured with the profile's whole policy, so that any conformant customer config comes
up and a non-conformant one is refused as the provider's real gateways would refuse it.
The customer's side is one gateway at the form's public IP with a host on every subnet.
"""

from __future__ import annotations

import copy
import re
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from lab.core.errors import InputError
from lab.providers.form import Form, psk_value
from lab.topology.model import Lab, Tunnel
from lab.topology.profiles import Profile
from lab.topology.resolve import resolve
from lab.topology.schema import Topology

CUSTOMER_SITE, PUBLIC_SITE = "customer", "public"
GATEWAY = "cgw"
FILES = ("swanctl.conf", "frr.conf")
PSK_ALPHABET = string.ascii_letters + string.digits + "._"


@dataclass(frozen=True)
class Plan:
    form: Form
    profile: Profile
    lab: Lab  # resolved: what the provider side runs and what the checks expect
    topology: dict  # the same lab as a topology file's data, before the bundle exists

    def topology_with(self, bundle: dict[str, str]) -> dict:
        """The lab's topology, its customer gateway running the bundle's files (name ->
        path, relative to where the topology file is written)."""
        data = copy.deepcopy(self.topology)
        gateway = data["sites"][CUSTOMER_SITE]["nodes"][GATEWAY]
        gateway["files"] = {f: path for f, path in bundle.items() if f in FILES}
        return data

    def tunnel_services(self, tunnel: Tunnel) -> list[str]:
        return carried(self.form, self.profile, int(tunnel.name.removeprefix("tunnel")))

    @property
    def services(self) -> list[str]:
        return asked(self.form, self.profile)

    def psks(self) -> list[str]:
        return self.lab.psks()


def asked(form: Form, profile: Profile) -> list[str]:
    """The services the form asks for: those it lists, else all of the profile's."""
    return form.services or list(profile.services)


def carried(form: Form, profile: Profile, tunnel: int) -> list[str]:
    """The services asked for that tunnel ``tunnel`` (1, 2, ...) carries."""
    return [s for s in profile.services_of(tunnel) if s in asked(form, profile)]


def make_plan(form: Form, profile: Profile, name: str, file: str) -> Plan:
    """The lab for ``form`` (already checked against ``profile``) named ``name``.
    InputError if the form lacks what a lab needs beyond the provider's rules (e.g.
    subnets to put hosts on)."""
    data = _topology(form, profile, name, file)
    topo = Topology.model_validate(data)
    try:
        lab = resolve(topo, source=file)
    except InputError as exc:
        raise InputError(exc.field, f"the lab for this form: {exc.rule}", file) from None
    return Plan(form, profile, lab, data)


def _topology(form: Form, p: Profile, name: str, file: str) -> dict:
    if not form.subnets:
        raise InputError(
            "subnets", "the conformance lab puts a host on each customer subnet: list them", file
        )
    internet = _internet(form, p, file)
    nodes = {}
    for node, spec in p.lab.nodes.items():
        spec = dict(spec)
        if "internet" in spec.get("interfaces", {}):
            own = IPv4Address(spec["interfaces"]["internet"])
            spec["interfaces"] = {**spec["interfaces"], "internet": str(rehome(own, internet))}
        nodes[node] = spec
    provider_nodes, public_nodes = split_public(nodes)
    segments = {"internet": str(internet), **{k: str(v) for k, v in p.lab.segments.items()}}
    lans, customer_nodes = customer_site_nodes(
        form.subnets,
        form.gateway_ip,
        lambda i, net: InputError(
            f"subnets.{i - 1}", f"{net}: the lab needs room for a gateway and a host", file
        ),
    )
    segments.update(lans)
    provider_site: dict = {"provider": p.name, "nodes": provider_nodes}
    customer_site: dict = {"nodes": customer_nodes}
    if form.routing == "bgp":
        provider_site["asn"] = p.asn.provider
        customer_site["asn"] = form.asn
        if form.routing not in p.routing:  # the form's rules let it through: agreed
            provider_site["exceptions"] = ["bgp"]
    sites = {p.name: provider_site, CUSTOMER_SITE: customer_site}
    if public_nodes:
        sites[PUBLIC_SITE] = {"nodes": public_nodes}
    return {
        "name": name,
        "description": f"conformance of {form.customer}'s VPN ({p.name} profile)",
        "routing": form.routing,
        "segments": segments,
        "sites": sites,
        "retransmit": dict(p.lab.retransmit),
        "tunnel_defaults": {"ike": form.ike, **p.lab.tunnel},
        "tunnels": _tunnels(form, p, file),
    }


def _tunnels(form: Form, p: Profile, file: str) -> dict:
    keys = _keys(form, p, file)
    inside = form.inside or _inside_pool(p, form.tunnels)
    lifetimes = {
        "ike_lifetime": form.lifetimes.ike or p.lifetimes.ike.max,
        "child_lifetime": form.lifetimes.child or p.lifetimes.child.max,
    }
    out = {}
    for n in range(1, form.tunnels + 1):
        services = carried(form, p, n)
        if not services:
            raise InputError("services", f"tunnel {n} would carry none of the services", file)
        provider: dict = {
            "node": p.lab.gateways[n - 1],
            "ike_proposals": p.ike.proposals(esp=False),
            # With and without PFS: whether the customer asks for it is its choice.
            "esp_proposals": [
                *p.esp.proposals(esp=True),
                *p.esp.model_copy(update={"dh_groups": []}).proposals(esp=True),
            ],
            **lifetimes,
        }
        customer: dict = {
            "node": GATEWAY,
            "ike_proposals": form.proposals.ike or p.recommended.ike,
            "esp_proposals": form.proposals.esp or p.recommended.esp,
            "dpd": {"delay": form.dpd_delay, "timeout": form.dpd_timeout},
            **lifetimes,
        }
        tunnel: dict = {"provider": provider, "customer": customer, "psk": keys[n - 1]}
        if form.routing == "static" or any(svc.tunnel for svc in p.services.values()):
            # Split services: each tunnel carries its own, with BGP too (by exception).
            provider["subnets"] = [str(p.services[s].subnet) for s in services]
        if form.routing == "static":
            customer["subnets"] = [str(s) for s in form.subnets]
        else:
            tunnel["inside"] = str(inside[n - 1])
            if p.lab.keepalive:
                tunnel["keepalive"] = p.lab.keepalive
        out[f"tunnel{n}"] = tunnel
    return out


def _keys(form: Form, p: Profile, file: str) -> list[str]:
    """The form's PSKs, or new ones the profile's rules accept."""
    if form.psk:
        keys = [psk_value(k) for k in form.psk]
        if None in keys:
            raise InputError("psk", "a key's environment variable is not set", file)
        return keys  # type: ignore[return-value]
    return [new_key(p) for _ in range(form.tunnels)]


def new_key(p: Profile) -> str:
    """A fresh PSK the profile's rules accept."""
    length = max(p.psk.min_length, min(32, p.psk.max_length))
    alphabet = "".join(c for c in PSK_ALPHABET if _allowed(c, p.psk.alphabet))
    first = alphabet.replace("0", "") if not p.psk.leading_zero else alphabet
    return secrets.choice(first) + "".join(secrets.choice(alphabet) for _ in range(length - 1))


def _allowed(char: str, char_class: str) -> bool:
    return re.fullmatch(f"[{char_class}]", char) is not None


def _inside_pool(p: Profile, count: int) -> list[IPv4Network]:
    """The first free /30s from 169.254.10.0 on, clear of the reserved ones."""
    start = IPv4Network("169.254.10.0/30")
    nets = []
    candidates = p.inside.pool.subnets(new_prefix=30)
    for net in candidates:
        if net.network_address < start.network_address:
            continue
        if not any(net.overlaps(r) for r in p.inside.reserved):
            nets.append(net)
        if len(nets) == count:
            break
    return nets


def _internet(form: Form, p: Profile, file: str) -> IPv4Network:
    """The lab's one internet segment: the profile's, or the /24 of the customer's public
    IP (the provider's addresses keep their host numbers in it)."""
    net = p.lab.internet
    if form.gateway_ip not in net:
        net = IPv4Network(f"{form.gateway_ip}/24", strict=False)
    taken = {
        rehome(IPv4Address(spec["interfaces"]["internet"]), net)
        for spec in p.lab.nodes.values()
        if "internet" in spec.get("interfaces", {})
    }
    if form.gateway_ip in taken or form.gateway_ip in (net.network_address, net[-1]):
        raise InputError(
            "gateway_ip",
            f"{form.gateway_ip} is an address the lab gives the provider's side; "
            "a lab cannot model it (use another host number)",
            file,
        )
    return net


def rehome(addr: IPv4Address, net: IPv4Network) -> IPv4Address:
    """``addr``'s host number in ``net``."""
    host = int(addr) & int(net.hostmask)
    return IPv4Address(int(net.network_address) | host)


def split_public(nodes: dict[str, dict]) -> tuple[dict[str, dict], dict[str, dict]]:
    """A profile's lab nodes: the provider's own, and the internet hosts (a site apart)."""
    public = {n: spec for n, spec in nodes.items() if spec.get("role") == "internet-host"}
    return {n: spec for n, spec in nodes.items() if n not in public}, public


def customer_site_nodes(
    subnets: list[IPv4Network],
    public: IPv4Address,
    too_small: Callable[[int, IPv4Network], InputError],
) -> tuple[dict[str, str], dict[str, dict]]:
    """The customer's side of a generated lab: per subnet a segment ``lanN`` and a host
    ``pcN`` (.100, or .2 in a small subnet), and the gateway at ``public`` and .1 of each:
    (segments, nodes). ``too_small(N, subnet)`` is the error for a subnet with no room."""
    segments: dict[str, str] = {}
    lan: dict[str, str] = {}
    nodes: dict[str, dict] = {}
    for i, net in enumerate(subnets, start=1):
        if net.num_addresses < 4:
            raise too_small(i, net)
        seg = f"lan{i}"
        segments[seg] = str(net)
        lan[seg] = str(net[1])
        host = net[100] if net.num_addresses > 102 else net[2]
        nodes[f"pc{i}"] = {"role": "host", "interfaces": {seg: str(host)}}
    nodes[GATEWAY] = {"role": "vpn-gateway", "interfaces": {"internet": str(public), **lan}}
    return segments, nodes


def context(plan: Plan) -> dict:
    """The variables of a customer template: everything the provider tells the customer,
    from the customer gateway's point of view. ``psk`` is the key itself."""
    lab, form = plan.lab, plan.form
    tunnels = []
    reqid = 0
    for number, t in enumerate(lab.tunnels.values(), start=1):
        cust, prov = t.customer, t.provider
        children = []
        for child in t.child_sas(cust.node):
            reqid += 1
            children.append(
                Vars(
                    "child",
                    name=child.name,
                    local_ts=[str(n) for n in child.local_ts],
                    remote_ts=[str(n) for n in child.remote_ts],
                    reqid=reqid,
                )
            )
        tunnels.append(
            Vars(
                "tunnel",
                name=t.name,
                number=number,
                children=children,
                local_addrs=str(cust.address),
                remote_addrs=str(prov.public_address),
                local_id=cust.id,
                remote_id=prov.id,
                psk=SecretText(cust.psk.get_secret_value()),
                local_ts=[str(n) for n in cust.ts],
                remote_ts=[str(n) for n in prov.ts],
                services=plan.tunnel_services(t),
                ike_version=cust.ike,
                ike_proposals=cust.ike_proposals,
                esp_proposals=cust.esp_proposals,
                ike_lifetime=cust.ike_lifetime,
                child_lifetime=cust.child_lifetime,
                dpd_delay=cust.dpd.delay,
                dpd_timeout=cust.dpd.timeout,
                inside=Vars(
                    "inside",
                    cidr=str(cust.inside.network) if cust.inside else None,
                    customer=str(cust.inside) if cust.inside else None,
                    customer_ip=str(cust.inside.ip) if cust.inside else None,
                    provider_ip=str(prov.inside.ip) if prov.inside else None,
                ),
                keepalive=t.keepalive,
                hold=t.hold,
            )
        )
    return {
        "customer": Vars(
            "customer",
            name=form.customer,
            gateway_ip=str(form.gateway_ip),
            asn=form.asn,
            subnets=[str(s) for s in form.subnets],
        ),
        "provider": Vars(
            "provider",
            name=plan.profile.name,
            description=plan.profile.description,
            asn=plan.profile.asn.provider,
        ),
        "routing": form.routing,
        "ike_version": form.ike,
        "tunnels": tunnels,
        "extra": Vars("extra", **{k: v for k, v in form.extras().items()}),
    }


class Vars(dict):
    """A template namespace that knows its own name, for undefined-variable errors."""

    def __init__(self, kind: str, **values: object) -> None:
        super().__init__(values)
        self.kind = kind

    def __getattr__(self, name: str) -> object:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class SecretText(str):
    """A key in a template's context: itself when rendered, redacted in a repr."""

    def __repr__(self) -> str:
        return "'<secret>'"
