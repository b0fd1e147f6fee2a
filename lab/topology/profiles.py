"""Provider profiles: what a provider lets a customer ask for, as data.

A profile is a YAML file (``profiles/<name>.yaml`` shipped with vpnlab, or in a directory of
the user's own named by ``VPNLAB_PROFILES``, searched first). ``extends:`` starts from another
profile, key by key. A topology's ``sites.<site>.provider`` picks one; the setup form of
``vpnlab form`` is checked against one, and its lab is built from the profile's ``lab:``.
"""

from __future__ import annotations

import os
from functools import cache
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from lab.core.errors import InputError, TopologyError
from lab.core.shipped import PROFILES, shipped
from lab.topology.model import Lab
from lab.topology.proposals import AEAD, DH, ENCRYPTION, INTEGRITY, PRF, check_proposal
from lab.topology.schema import (
    CloseAction,
    Dpd,
    Seconds,
    StartAction,
    Strict,
    TunnelSettings,
)
from lab.topology.yamlfile import load_yaml, read_text, validate

ROUTED = {"static": "statically", "bgp": "BGP"}
ENV = "VPNLAB_PROFILES"  # colon-separated directories of the user's own profiles


class Range(Strict):
    min: int
    max: int
    recommended: int | None = None


class Algorithms(Strict):
    """What one phase may negotiate, in strongSwan's proposal keywords."""

    encryption: list[str]
    integrity: list[str]
    dh_groups: list[str]

    @model_validator(mode="after")
    def _known(self) -> Algorithms:
        for field, known in (
            ("encryption", ENCRYPTION),
            ("integrity", INTEGRITY),
            ("dh_groups", DH),
        ):
            for word in getattr(self, field):
                if word not in known:
                    raise ValueError(f"{field}: unknown algorithm {word!r}")
        return self

    def proposals(self, *, esp: bool) -> list[str]:
        """Everything allowed, as strongSwan proposals: one with the plain ciphers, one with
        the AEAD ciphers (which take no integrity algorithm; IKE gives them PRFs instead)."""
        plain = [e for e in self.encryption if e not in AEAD]
        aead = [e for e in self.encryption if e in AEAD]
        out = []
        if plain:
            out.append("-".join([*plain, *self.integrity, *self.dh_groups]))
        if aead:
            prfs = [] if esp else [f"prf{i}" for i in self.integrity if i != "aesxcbc"]
            out.append("-".join([*aead, *prfs, *self.dh_groups]))
        return out

    def outside(self, proposal: str) -> list[str]:
        """The algorithms of ``proposal`` (strongSwan keywords) this phase does not allow."""
        words = proposal.split("-")
        out = []
        for word in words:
            if word in ENCRYPTION and word not in self.encryption:
                out.append(f"encryption {word}")
            elif word in INTEGRITY and word not in self.integrity:
                out.append(f"integrity {word}")
            elif word in DH and word not in self.dh_groups:
                out.append(f"DH group {word}")
            elif word in PRF and word.removeprefix("prf") not in self.integrity:
                out.append(f"PRF {word}")
        return sorted(set(out))


class Recommended(Strict):
    """What the provider's own templates offer unless the form says otherwise."""

    ike: list[str]
    esp: list[str]


class Lifetimes(Strict):
    ike: Range
    child: Range


class Subnets(Strict):
    required_with: list[Literal["static", "bgp"]] = ["static"]
    max_prefix: int = Field(8, ge=0, le=32, description="largest subnet allowed: /max_prefix")
    recommended_prefix: int | None = None
    refused: list[int] = Field([], description="prefix lengths refused outright")


class Inside(Strict):
    pool: IPv4Network
    reserved: list[IPv4Network] = []

    def refuses(self, net: IPv4Network) -> str | None:
        """Why the provider would refuse ``net`` as a tunnel's inside CIDR, or None."""
        if not net.subnet_of(self.pool):
            return f"inside CIDR {net} is outside {self.pool}"
        for r in self.reserved:
            if net.overlaps(r):
                return f"inside CIDR {net} is reserved ({r})"
        return None


class Psk(Strict):
    min_length: int = 8
    max_length: int = 64
    alphabet: str = Field("A-Za-z0-9._", description="a regex character class's contents")
    leading_zero: bool = True


class CustomerAsn(Strict):
    min: int = 1
    max: int = 4294967295
    reserved: list[int] = []


class Asn(Strict):
    provider: int = 64512
    customer: CustomerAsn = CustomerAsn()


class Service(Strict):
    """A provider service the customer reaches through the VPN: a subnet, the host in the
    lab that stands for it, and (split profiles) the tunnel that carries it."""

    subnet: IPv4Network
    host: IPv4Address
    tunnel: int | None = None


class FormField(Strict):
    description: str
    kind: Literal["text", "flag"] = "text"
    required: bool = False
    pattern: str | None = None


class NatEgress(Strict):
    gateway: str
    probe: str = Field(description="an internet host that sees where egress comes from")
    public: IPv4Address


class Endpoint(Strict):
    """How the provider's own tunnel endpoint behaves when the topology does not say: its
    side of every tunnel of a lab on this profile starts from these (a tunnel's settings,
    like a provider's per-tunnel options, still win)."""

    ike_lifetime: Seconds | None = None
    child_lifetime: Seconds | None = None
    rekey_margin: Seconds | None = None
    rekey_fuzz: int | None = Field(None, ge=0, le=100)
    dpd: Dpd | None = None
    start_action: StartAction | None = None
    close_action: CloseAction | None = None

    def settings(self) -> TunnelSettings:
        return TunnelSettings(**self.model_dump(exclude_none=True))


class ProviderLab(Strict):
    """The provider's side of a conformance lab, in topology syntax."""

    internet: IPv4Network
    segments: dict[str, IPv4Network]
    nodes: dict[str, dict]
    gateways: list[str] = Field(description="the gateway of tunnel 1, 2, ...")
    tunnel: dict = {}
    retransmit: dict = {}
    keepalive: int | None = None


class Profile(Strict):
    name: str
    description: str = ""
    tunnels: Range
    routing: list[Literal["static", "bgp"]]
    bgp_exception: str | None = Field(
        None, description="the form flag that allows BGP where routing does not"
    )
    ike_versions: list[Literal[1, 2]]
    ike: Algorithms
    esp: Algorithms
    recommended: Recommended
    lifetimes: Lifetimes
    subnets: Subnets = Subnets()
    inside: Inside
    psk: Psk = Psk()
    asn: Asn = Asn()
    services: dict[str, Service]
    form_fields: dict[str, FormField] = {}
    nat_egress: NatEgress | None = None
    lab: ProviderLab
    endpoint: Endpoint | None = Field(
        None, description="the provider endpoint's own behaviour (DPD, lifetimes, start)"
    )
    templates: str = "strongswan"
    pfs: bool = Field(False, description="phase 2 must use PFS: every ESP proposal a DH group")

    @field_validator("services")
    @classmethod
    def _some_service(cls, v: dict) -> dict:
        if not v:
            raise ValueError("a profile lists at least one service")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Profile:
        if len(self.lab.gateways) < self.tunnels.max:
            raise ValueError(
                f"lab.gateways: {self.tunnels.max} tunnels need as many gateways "
                f"({len(self.lab.gateways)} given)"
            )
        for phase, allowed, esp in (("ike", self.ike, False), ("esp", self.esp, True)):
            for proposal in getattr(self.recommended, phase):
                why = check_proposal(proposal, esp=esp) or ", ".join(allowed.outside(proposal))
                if why:
                    raise ValueError(f"recommended.{phase}: {proposal}: {why}")
        for name, svc in self.services.items():
            if svc.tunnel is not None and not 1 <= svc.tunnel <= self.tunnels.max:
                raise ValueError(f"services.{name}.tunnel: no tunnel {svc.tunnel}")
        return self

    def split(self) -> bool:
        """Each tunnel carries services of its own (no failover between them)."""
        return any(s.tunnel is not None for s in self.services.values())

    def services_of(self, tunnel: int) -> list[str]:
        return [n for n, s in self.services.items() if s.tunnel in (None, tunnel)]


# loading ----------------------------------------------------------------------------------
def search_path() -> list[Path]:
    own = [Path(p) for p in os.environ.get(ENV, "").split(":") if p]
    return [*own, shipped(PROFILES)]


def profile_names() -> list[str]:
    return sorted({p.stem for d in search_path() if d.is_dir() for p in d.glob("*.yaml")})


def _find(name: str) -> Path | None:
    for d in search_path():
        if (d / f"{name}.yaml").is_file():
            return d / f"{name}.yaml"
    return None


# Replaced as a whole by a profile that extends another, not merged key by key.
WHOLE = {"services", "nodes", "segments", "gateways"}


def _merged(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key not in WHOLE:
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def _raw(name: str, chain: tuple[str, ...] = ()) -> tuple[dict, str]:
    path = _find(name)
    if path is None:
        raise InputError(
            "provider",
            f"unknown provider profile {name!r}; known: {', '.join(profile_names())}",
        )
    data = load_yaml(read_text(path, "profile"), str(path), "profile is a YAML mapping")
    parent = data.pop("extends", None)
    if parent is None:
        return data, str(path)
    if parent in (*chain, name):
        raise InputError("extends", f"profiles extend each other in a loop ({name})", path)
    base, _ = _raw(str(parent), (*chain, name))
    return _merged(base, data), str(path)


@cache
def _load(name: str, path_key: tuple[str, ...]) -> Profile:
    data, file = _raw(name)
    profile = validate(Profile, data, file)
    if profile.name != name:
        raise InputError("name", f"the profile in {name}.yaml must be named {name!r}", file)
    return profile


def load_profile(name: str) -> Profile:
    """The profile ``name``, merged with what it extends; InputError if there is none or
    its file is bad."""
    return _load(name, tuple(str(p) for p in search_path()))


# a topology against its profile ------------------------------------------------------------
def check_profile(lab: Lab, field: str) -> None:
    """The rules of the lab's profile that a topology can break, as TopologyError."""
    try:
        profile = load_profile(lab.profile)
    except InputError as exc:
        raise TopologyError(field, exc.rule if exc.field == "provider" else exc.message) from None
    if "bgp" in lab.exceptions and not profile.bgp_exception:
        site = field.rsplit(".", 1)[0]
        raise TopologyError(
            f"{site}.exceptions",
            f"{profile.name} profile: there is no BGP exception to its routing rules",
        )
    routing = {*profile.routing, *(["bgp"] if "bgp" in lab.exceptions else [])}
    per_gateway: dict[str, int] = {}
    for t in lab.tunnels.values():
        inside = t.provider.inside
        if inside is not None:
            why = profile.inside.refuses(inside.network)
            if why:
                raise TopologyError(f"tunnels.{t.name}.inside", f"{profile.name} profile: {why}")
        per_gateway[t.customer.node] = per_gateway.get(t.customer.node, 0) + 1
        if per_gateway[t.customer.node] > profile.tunnels.max:
            raise TopologyError(
                f"tunnels.{t.name}",
                f"{profile.name} profile: at most {profile.tunnels.max} tunnels per customer "
                f"gateway ({t.customer.node} has more)",
            )
        if t.routing not in routing:
            exception = (
                "exceptions: [bgp] on the provider site, where agreed"
                if t.routing == "bgp" and profile.bgp_exception
                else "the generic profile models an exception"
            )
            raise TopologyError(
                f"tunnels.{t.name}.routing",
                f"{profile.name} profile: VPNs are "
                f"{' or '.join(ROUTED[r] for r in profile.routing)} routed ({exception})",
            )
        for net in t.customer.ts:
            if t.customer.inside and net == t.customer.inside.network:
                continue
            if net.prefixlen < profile.subnets.max_prefix and net.prefixlen != 32:
                raise TopologyError(
                    f"tunnels.{t.name}.customer.subnets",
                    f"{profile.name} profile: customer subnet {net} is larger than "
                    f"/{profile.subnets.max_prefix}",
                )
