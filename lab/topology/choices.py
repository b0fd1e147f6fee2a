"""The values a topology (or the command line) can choose from, each written once: node
releases with the strongSwan and FRR they carry, runtimes, data planes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Release:
    name: str
    debian: str
    strongswan: str  # expected version prefix
    frr: str


RELEASES: dict[str, Release] = {
    "bookworm": Release("bookworm", "12", strongswan="5.9.", frr="8.4."),
    "trixie": Release("trixie", "13", strongswan="6.0.", frr="10."),
}
DEFAULT_RELEASE = "bookworm"
# Network namespaces run the host's own strongSwan and FRR: the release of this machine.
HOST_RELEASE = "bookworm"

RUNTIMES = ("netns", "docker")  # besides "auto": Docker when an engine answers, else netns
AUTO = "auto"
KERNEL, USERSPACE = "kernel", "userspace"
DATAPLANES = (USERSPACE, KERNEL)  # besides "auto": what each gateway's kernel offers

# How a tunnel decides what enters it. route: one XFRM interface per tunnel (if_id),
# selectors 0.0.0.0/0, the routing table (BGP) picks the tunnel, as AWS's VPN endpoints
# do. policy: the selectors are the subnets, and the kernel's policies pick the SA.
ROUTE, POLICY = "route", "policy"
TUNNEL_MODES = (ROUTE, POLICY)
DEFAULT_MODE = {"bgp": ROUTE, "static": POLICY}  # by routing mode
