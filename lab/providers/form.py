"""The customer's VPN setup form, as a YAML file: what the seeds' providers collect.

The shape is checked here (types, known fields); the provider's rules are checked by
``rules.check`` against the profile the form names. A profile may add fields of its own
(Tray's org ID, Thredd's Transit Gateway ID): those sit at the top level too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr

from lab.topology.schema import Address, Network, Psk, Seconds, Strict, psk_input
from lab.topology.yamlfile import load_yaml, read_text, validate

KnownPsk = Annotated[SecretStr | Psk, BeforeValidator(psk_input)]


class Proposals(Strict):
    ike: list[str] | None = None
    esp: list[str] | None = None


class Lifetimes(Strict):
    ike: Seconds | None = None
    child: Seconds | None = None


class Form(BaseModel):
    # Extra top-level fields are the profile's own; rules.check knows them.
    model_config = ConfigDict(extra="allow", frozen=True)

    provider: str = Field(description="the provider profile: tray, thredd, generic, ...")
    customer: str = Field(min_length=1, description="customer name")
    gateway_ip: Address = Field(description="the customer gateway's public IP address")
    routing: Literal["static", "bgp"] = Field(description="static or dynamically (BGP) routed")
    ike: Literal[1, 2] = Field(2, description="IKE version")
    tunnels: int = Field(2, ge=1, le=8, description="1, or 2 for failover")
    subnets: list[Network] = Field([], description="the customer's subnet ranges")
    asn: int | None = Field(None, ge=1, le=4294967295, description="BGP: the gateway's ASN")
    services: list[str] | None = Field(
        None, description="the provider services to reach (default: all of the profile's)"
    )
    inside: list[Network] | None = Field(
        None, description="BGP: each tunnel's inside /30 (default: picked from the pool)"
    )
    psk: list[KnownPsk] | None = Field(
        None, description="one pre-shared key per tunnel, or {env: VAR} (default: generated)"
    )
    proposals: Proposals = Field(
        Proposals(), description="what the gateway offers: {ike: [...], esp: [...]}"
    )
    lifetimes: Lifetimes = Field(
        Lifetimes(), description="phase 1 and phase 2 lifetimes: {ike: 8h, child: 1h}"
    )
    dpd_delay: Seconds = Field(10, description="the customer gateway's DPD interval")
    dpd_timeout: Seconds = Field(
        30, description="IKEv1: how long the gateway waits for a DPD answer"
    )
    nat_egress: bool = Field(False, description="non-VPN egress through the NAT gateway")

    def extras(self) -> dict[str, object]:
        return dict(self.model_extra or {})


def parse_form(text: str, file: str) -> Form:
    data = load_yaml(text, file, "setup form is a YAML mapping (provider:, customer:, ...)")
    return validate(Form, data, file)


def load_form(path: str | Path) -> Form:
    path = Path(path)
    return parse_form(read_text(path, "setup form"), str(path))


def psk_value(psk: SecretStr | Psk) -> str | None:
    """The key itself; None if it names an environment variable that is not set."""
    if isinstance(psk, Psk):
        return os.environ.get(psk.env)
    return psk.get_secret_value()
