"""Provider profiles: the rules a provider puts on what a customer may ask for.

Each profile is registered by name; ``sites.<site>.provider`` picks one. A rule raises
TopologyError naming the field it rejects.
"""

from __future__ import annotations

from collections.abc import Callable

from lab.core.errors import TopologyError
from lab.topology.model import Lab

Rule = Callable[[Lab], None]
PROFILES: dict[str, list[Rule]] = {}


def profile(name: str) -> Callable[[Rule], Rule]:
    """Register a rule under a profile name (a profile may have several rules)."""

    def register(rule: Rule) -> Rule:
        PROFILES.setdefault(name, []).append(rule)
        return rule

    return register


def check_profile(lab: Lab, field: str) -> None:
    if lab.profile not in PROFILES:
        raise TopologyError(
            field, f"unknown provider profile {lab.profile!r}; known: {', '.join(sorted(PROFILES))}"
        )
    for rule in PROFILES[lab.profile]:
        rule(lab)


@profile("generic")
def _no_rules(lab: Lab) -> None:
    """A provider with no rules beyond vpnlab's own."""


@profile("tray")
def _tray_two_tunnels(lab: Lab) -> None:
    """Tray offers up to two tunnels (two IPsec credentials) per customer gateway."""
    per_gateway: dict[str, int] = {}
    for t in lab.tunnels.values():
        per_gateway[t.customer.node] = per_gateway.get(t.customer.node, 0) + 1
        if per_gateway[t.customer.node] > 2:
            raise TopologyError(
                f"tunnels.{t.name}",
                f"tray profile: at most 2 tunnels per customer gateway "
                f"({t.customer.node} has more)",
            )


@profile("thredd")
def _thredd_subnets(lab: Lab) -> None:
    """Thredd accepts customer subnets no larger than /22 (a /24 is recommended)."""
    for t in lab.tunnels.values():
        for net in t.customer.ts:
            if t.customer.inside and net == t.customer.inside.network:
                continue
            if net.prefixlen < 22 and net.prefixlen != 32:
                raise TopologyError(
                    f"tunnels.{t.name}.customer.subnets",
                    f"thredd profile: customer subnet {net} is larger than /22",
                )


@profile("thredd")
def _thredd_static(lab: Lab) -> None:
    """Thredd supports static routing; BGP only by special arrangement."""
    for t in lab.tunnels.values():
        if t.routing != "static":
            raise TopologyError(
                f"tunnels.{t.name}.routing",
                "thredd profile: VPNs are statically routed "
                "(use the generic profile to model a BGP exception)",
            )
