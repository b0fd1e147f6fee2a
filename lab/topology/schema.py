"""The topology file as written: typed, defaulted, checked field by field.

Cross-references (a tunnel naming a node, an address inside its segment) are checked
later, in ``resolve``; this module only knows the shape of the file.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from lab.topology.choices import AUTO, DATAPLANES, DEFAULT_RELEASE, RELEASES, RUNTIMES
from lab.topology.proposals import check_proposal

NAME = r"^[a-z][a-z0-9-]{0,14}$"
LAB_NAME = r"^[a-z][a-z0-9-]{0,23}$"
IKE_ID = r"^[A-Za-z0-9@][A-Za-z0-9.@_-]{0,252}$"
INSIDE_POOL = ipaddress.ip_network("169.254.0.0/16")
# Readable rules for the name patterns (pydantic's own message just quotes the regex).
PATTERN_RULES = {
    NAME: "names are lowercase letters, digits and '-', start with a letter, at most 15 characters",
    LAB_NAME: "lab names are lowercase letters, digits and '-', start with a letter, "
    "at most 24 characters",
    IKE_ID: "an IKE id is an IPv4 address, a host name (FQDN) or user@FQDN, without spaces",
}
BGP_KEEPALIVE, BGP_HOLD = 10, 30
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> int:
    """Seconds from ``30``, ``"30s"``, ``"10m"``, ``"8h"`` or ``"1d"``."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or e.g. '10s', '5m', '8h'")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return int(value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", value)
        if m:
            return int(m.group(1)) * _UNITS[m.group(2) or "s"]
    raise ValueError(f"{value!r} is not a duration (use seconds or e.g. '10s', '5m', '8h')")


def _network(value: object) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(str(value), strict=True)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an IPv4 network in CIDR form ({exc})") from None


def _address(value: object) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(str(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 address") from None


Seconds = Annotated[int, BeforeValidator(parse_duration)]
Network = Annotated[ipaddress.IPv4Network, BeforeValidator(_network)]
Address = Annotated[ipaddress.IPv4Address, BeforeValidator(_address)]
Name = Annotated[str, StringConstraints(pattern=NAME)]
Role = Literal["vpn-gateway", "router", "nat-gateway", "host", "internet-host"]
StartAction = Literal["none", "trap", "start"]
ReleaseName = Literal[tuple(RELEASES)]  # type: ignore[valid-type]
RuntimeName = Literal[(AUTO, *RUNTIMES)]  # type: ignore[valid-type]
DataplaneName = Literal[(AUTO, *DATAPLANES)]  # type: ignore[valid-type]
CloseAction = Literal["none", "clear", "trap", "start"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Route(Strict):
    to: Network
    via: Address


class Node(Strict):
    role: Role
    interfaces: dict[str, Address] = Field(
        description="segment name -> this node's address on it (prefix length from the segment)"
    )
    gateway: Address | None = Field(None, description="default route; derived for hosts")
    routes: list[Route] = []
    files: dict[Literal["swanctl.conf", "frr.conf"], str] = Field(
        {},
        description="daemon configuration the node runs exactly as given, instead of one "
        "vpnlab renders (e.g. a customer's rendered bundle): path, relative to the topology",
    )
    release: ReleaseName = Field(
        DEFAULT_RELEASE,
        description="Docker runtime: node image (Debian 12: strongSwan 5.9, "
        "FRR 8.4; Debian 13: strongSwan 6.0, FRR 10)",
    )

    @field_validator("interfaces")
    @classmethod
    def _some_interface(cls, v: dict) -> dict:
        if not v:
            raise ValueError("a node needs at least one interface")
        return v


class Site(Strict):
    provider: str | None = Field(
        None, description="provider profile (tray, thredd, generic); marks the provider site"
    )
    asn: int | None = Field(None, ge=1, le=4294967295)
    prefixes: list[Network] | None = Field(
        None, description="what the site routes over the VPN; default: its own segments"
    )
    nodes: dict[str, Node]
    exceptions: list[Literal["bgp"]] = Field(
        [],
        description="provider site: its profile's rules waived by arrangement (bgp: BGP "
        "routing where the profile routes statically, if the profile has such an exception)",
    )


class Dpd(Strict):
    delay: Seconds = Field(10, description="0 turns DPD off")
    timeout: Seconds = Field(30, description="IKEv1 only; IKEv2 uses retransmission")
    action: Literal["clear", "trap", "restart"] = "restart"


class Psk(Strict):
    env: str = Field(description="environment variable holding the pre-shared key")

    @field_validator("env")
    @classmethod
    def _env_name(cls, v: str) -> str:
        # Never echo the value: a key pasted here by mistake must not reach an error message.
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", v):
            raise ValueError(
                "psk.env takes the name of an environment variable "
                "(letters, digits, '_'), not the key itself"
            )
        return v


def psk_input(value: object) -> object:
    """A PSK is a string or ``{env: VAR}``; say so, without echoing what was given."""
    if value is None or isinstance(value, str | SecretStr | Psk):
        return value
    if isinstance(value, dict):
        try:
            return Psk.model_validate(value)
        except ValidationError as exc:
            err = exc.errors()[0]
            why = (
                err["msg"].removeprefix("Value error, ")
                if err["type"] == "value_error"
                else "a pre-shared key is a string or {env: VAR}"
            )
            raise ValueError(why) from None
    raise ValueError(
        "a pre-shared key is a string (quote it if it looks like a number) or {env: VAR}"
    )


class TunnelSettings(Strict):
    """What either side of a tunnel may set; a side's own value wins over the tunnel's."""

    ike: Literal[1, 2] | None = None
    ike_proposals: list[str] | None = None
    esp_proposals: list[str] | None = None
    ike_lifetime: Seconds | None = None
    child_lifetime: Seconds | None = None
    rekey_margin: Seconds | None = Field(
        None,
        description="rekey this long before a lifetime ends (AWS's and ipsec.conf's "
        "rekeymargin); the lifetimes are then hard lifetimes. Default: rekey at the lifetime",
    )
    rekey_fuzz: int | None = Field(
        None,
        ge=0,
        le=100,
        description="percent of rekey_margin by which each rekey comes randomly earlier",
    )
    dpd: Dpd | None = None
    start_action: StartAction | None = None
    close_action: CloseAction | None = None
    inactivity: Seconds | None = Field(
        None,
        description="close a CHILD_SA after this long without traffic either way "
        "(0: never, the default)",
    )
    psk: Annotated[SecretStr | Psk | None, BeforeValidator(psk_input)] = None

    @field_validator("ike_proposals", "esp_proposals")
    @classmethod
    def _known(cls, v: list[str] | None, info) -> list[str] | None:
        for proposal in v or []:
            why = check_proposal(proposal, esp=info.field_name == "esp_proposals")
            if why:
                raise ValueError(why)
        return v


class Side(TunnelSettings):
    node: str
    address: Address | None = Field(
        None,
        description="the address the peer sees and connects to (e.g. a NAT's public "
        "address); default: the node's address on a segment shared with the peer, else its "
        "site NAT gateway's public address",
    )
    id: Annotated[str, StringConstraints(pattern=IKE_ID)] | None = Field(
        None,
        description="IKE identity (an IPv4 address, FQDN or user@FQDN) both sides use; "
        "default: the address the peer sees",
    )
    subnets: list[Network] | None = Field(None, description="static routing: this side's subnets")


def _side(value: object) -> object:
    return {"node": value} if isinstance(value, str) else value


class Tunnel(TunnelSettings):
    provider: Annotated[Side, BeforeValidator(_side)]
    customer: Annotated[Side, BeforeValidator(_side)]
    routing: Literal["static", "bgp"] | None = None
    inside: Network | None = Field(None, description="BGP: /30 inside 169.254.0.0/16")
    mode: Literal["route", "policy"] | None = Field(
        None,
        description="route: an XFRM interface per tunnel with 0.0.0.0/0 selectors, BGP "
        "over it (kernel data plane; the userspace one routes over ipsec0 with the "
        "subnets as selectors); policy: the subnets are the selectors. Default: route "
        "for BGP, policy for static routing",
    )
    keepalive: Seconds | None = None
    hold: Seconds | None = None

    @field_validator("inside")
    @classmethod
    def _inside(cls, v: ipaddress.IPv4Network | None) -> ipaddress.IPv4Network | None:
        if v is None:
            return v
        if v.prefixlen != 30:
            raise ValueError(f"inside CIDR {v} must be a /30")
        if not v.subnet_of(INSIDE_POOL):
            raise ValueError(f"inside CIDR {v} must lie in 169.254.0.0/16")
        return v

    @field_validator("keepalive")
    @classmethod
    def _keepalive(cls, v: int | None) -> int | None:
        if v == 0:
            raise ValueError(
                "keepalive 0 turns off BGP keepalives and the hold timer: BGP "
                "would never notice a dead tunnel; give at least 1s"
            )
        return v

    @field_validator("hold")
    @classmethod
    def _timers(cls, v: int | None, info: ValidationInfo) -> int | None:
        keepalive = info.data.get("keepalive") or BGP_KEEPALIVE
        if v is not None and v < 3 * keepalive:
            raise ValueError(f"hold ({v}s) must be at least 3 x keepalive ({keepalive}s)")
        return v


class Retransmit(Strict):
    """charon's IKE retransmission schedule: timeout * base**n for n = 0..tries. For IKEv2
    it is also how long DPD takes to declare a silent peer dead."""

    timeout: float = Field(2.0, gt=0, le=60)
    tries: int = Field(3, ge=0, le=10)
    base: float = Field(1.5, ge=1, le=4)


class Topology(Strict):
    name: Annotated[str, Field(pattern=LAB_NAME)]
    description: str = ""
    runtime: RuntimeName = AUTO
    dataplane: DataplaneName = Field(
        AUTO,
        description="IPsec data plane of every gateway: auto = the kernel's ESP where "
        "the node's kernel has it, else strongSwan's userspace one (kernel-libipsec); "
        "userspace everywhere, e.g. to match a CI machine; kernel, or fail",
    )
    segments: dict[Name, Network]
    sites: dict[Name, Site]
    tunnel_defaults: TunnelSettings | None = Field(
        None, description="settings every tunnel gets unless it sets its own"
    )
    routing: Literal["static", "bgp"] = "static"
    retransmit: Retransmit = Retransmit()
    tunnels: dict[Name, Tunnel] = {}
    env_file: str | None = Field(
        None,
        description="KEY=VALUE file (relative to the topology, mode 0600) that {env: VAR} "
        "keys are read from when VAR is not in the environment",
    )
