"""The lab's address plan: every network it numbers or routes, which Docker's management
network must stay clear of. A default route is a catch-all, not a network of the lab."""

from __future__ import annotations

from ipaddress import IPv4Network

from topo_util import REPO

from lab.topology import load_lab


def plan(topology: str) -> list[str]:
    return [str(n) for n in load_lab(REPO / "topologies" / topology).address_plan()]


def test_segments_and_tunnel_inside_networks():
    assert plan("tray-bgp-ikev2.yaml") == [
        "10.10.0.0/24",
        "169.254.10.0/30",
        "169.254.11.0/30",
        "172.16.1.0/24",
        "198.51.100.0/24",
    ]


def test_adjacent_networks_are_collapsed():
    assert plan("thredd-static.yaml") == [
        "10.30.1.0/24",
        "10.30.2.0/23",
        "192.168.50.0/24",
        "203.0.113.0/24",
    ]


def test_default_routes_are_left_out():
    lab = load_lab(REPO / "topologies/tray-bgp-nat.yaml")
    assert any(r.to.prefixlen == 0 for n in lab.nodes.values() for r in n.routes)
    assert IPv4Network("0.0.0.0/0") not in lab.address_plan()
    assert all(n.prefixlen > 0 for n in lab.address_plan())
