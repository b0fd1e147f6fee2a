"""The resolved lab: every name, address, selector and BGP session decided.

This is what gets rendered and deployed, and what is saved as the lab's state, so
``status`` and ``down`` work without re-reading (or trusting) the topology file.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network, collapse_addresses
from itertools import product
from typing import Literal

from pydantic import BaseModel, ConfigDict, SecretStr, field_serializer, model_validator

from lab.topology.choices import AUTO, DEFAULT_RELEASE


class Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class Interface(Model):
    name: str
    segment: str
    address: IPv4Interface


class StaticRoute(Model):
    to: IPv4Network
    via: IPv4Address
    distance: int = 1


class BgpNeighbor(Model):
    address: IPv4Address
    remote_as: int
    update_source: IPv4Address | None = None
    next_hop_self: bool = False
    keepalive: int = 10
    hold: int = 30
    tunnel: str | None = None
    local_pref_out: int | None = None
    passive: bool = False


class Bgp(Model):
    asn: int
    router_id: IPv4Address
    networks: list[IPv4Network]
    neighbors: list[BgpNeighbor]
    # Static routing: the routes charon installs for remote selectors, passed on to routers.
    redistribute_tunnel_routes: list[IPv4Network] = []


class Node(Model):
    name: str
    site: str
    site_kind: Literal["provider", "customer"]
    role: str
    release: str = DEFAULT_RELEASE
    interfaces: list[Interface]
    routes: list[StaticRoute] = []
    forwarding: bool = False
    charon: bool = False
    bgp: Bgp | None = None
    inside_addresses: list[IPv4Interface] = []
    # Configuration files run as given (file name -> absolute path), not rendered.
    supplied: dict[str, str] = {}

    @property
    def frr(self) -> bool:
        return self.bgp is not None or self.role == "router"


class Dpd(Model):
    delay: int
    timeout: int
    action: str


class Endpoint(Model):
    """One side of a tunnel, with every setting merged (side > tunnel > defaults)."""

    node: str
    address: IPv4Address  # its own, on its node: charon's local_addrs
    # What the peer sees and connects to (the peer's remote_addrs): the NAT's public address
    # when the endpoint sits behind a NAT, else its own address.
    public_address: IPv4Address
    id: str  # IKE identity, the same string on both sides (and as the PSK's owner)
    ts: list[IPv4Network]
    inside: IPv4Interface | None = None
    # Route mode on the kernel data plane: the tunnel's XFRM interface (its if_id, and the
    # interface xfrm<if_id> on this endpoint's node). Set at bring-up, once the data plane
    # is known; None: policy-based, or the userspace data plane (no if_id there).
    if_id: int | None = None
    # Policy mode on the kernel data plane: a fixed priority for the tunnel's policies, by
    # its place on this node (1 = first). Two tunnels of one gateway with the same selectors
    # share one policy per direction; the kernel holds one, the lower value wins, and the
    # SA it names must be the one the peer's return traffic comes in on (the provider
    # prefers tunnel 1 too). Without it the CHILD_SA installed last would win.
    policy_rank: int | None = None
    asn: int | None = None
    ike: Literal[1, 2]
    ike_proposals: list[str]
    esp_proposals: list[str]
    ike_lifetime: int
    child_lifetime: int
    rekey_margin: int = 0  # 0: rekey at the lifetime (charon's own hard-lifetime defaults)
    rekey_fuzz: int = 100
    dpd: Dpd
    start_action: str
    close_action: str
    inactivity: int = 0  # seconds without traffic before the CHILD_SA is closed; 0: never
    psk: SecretStr

    @model_validator(mode="before")
    @classmethod
    def _before_nat_split(cls, data: object) -> object:
        # State saved before public_address/id existed: the one address was all three.
        if isinstance(data, dict) and "address" in data:
            data = {"public_address": data["address"], **data}
            data.setdefault("id", str(data["public_address"]))
        return data

    @field_serializer("psk", when_used="json")
    def _psk(self, v: SecretStr, info) -> str:
        # Only the 0600 state file asks for the real key (context reveal_secrets=True).
        return v.get_secret_value() if (info.context or {}).get("reveal_secrets") else str(v)


ANY = IPv4Network("0.0.0.0/0")


class ChildSa(Model):
    name: str
    local_ts: list[IPv4Network]
    remote_ts: list[IPv4Network]


class Tunnel(Model):
    name: str
    routing: Literal["static", "bgp"]
    mode: Literal["route", "policy"] = "policy"  # asked for (or the routing mode's default)
    keepalive: int = 10
    hold: int = 30
    provider: Endpoint
    customer: Endpoint

    def side(self, node: str) -> tuple[Endpoint, Endpoint]:
        """(local, remote) endpoints as seen from ``node``."""
        if node == self.provider.node:
            return self.provider, self.customer
        return self.customer, self.provider

    def child_sas(self, node: str) -> list[ChildSa]:
        """The tunnel's CHILD_SAs as ``node`` configures them, one per selector pair.

        IKEv2 negotiates selector lists: one CHILD_SA. IKEv1 (Quick Mode) one subnet pair per
        CHILD_SA, so the inside /32s get a CHILD_SA of their own and each routed prefix pair
        another, named ``<tunnel>-1``, ``-2``... A route-based tunnel on XFRM interfaces
        has one, 0.0.0.0/0 both ways, whatever the IKE version.
        """
        local, remote = self.side(node)
        if local.if_id is not None:
            # Route-based: everything the routing table sends into the interface.
            return [ChildSa(name=self.name, local_ts=[ANY], remote_ts=[ANY])]
        lts, rts = list(local.ts), list(remote.ts)
        if local.ike == 2:
            pairs = [(lts, rts)]
        else:
            pairs = []
            if local.inside and remote.inside:
                pairs.append(([lts.pop(0)], [rts.pop(0)]))
            pairs += [([a], [b]) for a, b in product(lts, rts)]
        if len(pairs) == 1:
            return [ChildSa(name=self.name, local_ts=pairs[0][0], remote_ts=pairs[0][1])]
        return [
            ChildSa(name=f"{self.name}-{i}", local_ts=a, remote_ts=b)
            for i, (a, b) in enumerate(pairs, start=1)
        ]


class Retransmit(Model):
    timeout: float = 2.0
    tries: int = 3
    base: float = 1.5

    def give_up_after(self) -> float:
        """Seconds from the first transmission until charon gives up on a request."""
        return sum(self.timeout * self.base**n for n in range(self.tries + 1))


class Lab(Model):
    name: str
    source: str
    profile: str
    runtime: str = AUTO
    dataplane: str = AUTO  # asked for: auto, userspace or kernel
    retransmit: Retransmit = Retransmit()
    segments: dict[str, IPv4Network]
    nodes: dict[str, Node]
    tunnels: dict[str, Tunnel]
    exceptions: tuple[str, ...] = ()  # the provider's rules waived by arrangement (bgp)

    def tunnels_of(self, node: str) -> list[Tunnel]:
        return [t for t in self.tunnels.values() if node in (t.provider.node, t.customer.node)]

    def psks(self) -> list[str]:
        """Every tunnel end's key (the two ends differ in a PSK-mismatch lab): what no
        report, log copy or capture may show."""
        ends = [ep for t in self.tunnels.values() for ep in (t.provider, t.customer)]
        return sorted({ep.psk.get_secret_value() for ep in ends} - {""})

    def address_plan(self) -> list[IPv4Network]:
        """Every network the lab numbers or routes (segments, selectors, announced and static
        routes, tunnel inside addresses), but not a default route: anything that must stay
        clear of it, such as a Docker management network."""
        nets = set(self.segments.values())
        for t in self.tunnels.values():
            for ep in (t.provider, t.customer):
                nets.update(ep.ts)
                if ep.inside:
                    nets.add(ep.inside.network)
        for node in self.nodes.values():
            nets.update(r.to for r in node.routes)
            nets.update(i.network for i in node.inside_addresses)
            if node.bgp:
                nets.update(node.bgp.networks)
        return list(collapse_addresses(n for n in nets if n.prefixlen > 0))

    def on_kernel(self, nodes: set[str]) -> Lab:
        """The lab as it runs when ``nodes`` do ESP in the kernel. A route-mode tunnel end
        on one of them gets an if_id (its XFRM interface) when vpnlab renders its config
        and the peer's end is route-based too or runs a supplied file (which IKEv2 narrows
        to); every other end on one of them gets a policy rank. Both are numbered per node,
        in tunnel order. A node running a supplied swanctl.conf gets neither."""

        def own(node: str) -> bool:
            return "swanctl.conf" not in self.nodes[node].supplied

        tunnels = {}
        for name, t in self.tunnels.items():
            ends = {}
            for role in ("provider", "customer"):
                ep = getattr(t, role)
                peer = t.customer if role == "provider" else t.provider
                place = 1 + [x.name for x in self.tunnels_of(ep.node)].index(name)
                kernel = ep.node in nodes and own(ep.node)
                route = kernel and t.mode == "route" and (peer.node in nodes or not own(peer.node))
                ends[role] = ep.model_copy(
                    update={
                        "if_id": place if route else None,
                        "policy_rank": place if kernel and not route else None,
                    }
                )
            tunnels[name] = t.model_copy(update=ends)
        return self.model_copy(update={"tunnels": tunnels})

    def asking(self, dataplane: str | None) -> Lab:
        """The lab asking for ``dataplane`` instead of its topology's (None: as it is)."""
        return self if dataplane is None else self.model_copy(update={"dataplane": dataplane})

    def renamed(self, name: str) -> Lab:
        return self.model_copy(update={"name": name})
