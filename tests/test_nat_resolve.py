"""NAT: the derivations (routes towards and back from NAT gateways, the outside segment),
an endpoint's own address vs the address its peer sees, and the IKE identities.

From the shipped tray-bgp-nat (provider NAT gateway, public web host) and tray-natt
(customer gateway behind a NAT device) topologies, and variants of the tray BGP topology.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest
import yaml
from test_render import parse_conf, render, swanctl
from topo_util import REPO, put, variant, write

from lab.core.errors import TopologyError
from lab.observe.diagnose import TunnelEvidence, diagnose_tunnel, parse_log, tunnel_lines
from lab.topology import load_lab
from lab.topology.model import Endpoint, Lab

NAT_LAB, NATT_LAB = REPO / "topologies/tray-bgp-nat.yaml", REPO / "topologies/tray-natt.yaml"
PUBLIC, PRIVATE = "198.51.100.21", "192.168.100.10"


@pytest.fixture(scope="module")
def nat() -> Lab:
    return load_lab(NAT_LAB)


@pytest.fixture(scope="module")
def natt() -> Lab:
    return load_lab(NATT_LAB)


def routes(lab: Lab, node: str) -> list[tuple[str, str]]:
    return [(str(r.to), str(r.via)) for r in lab.nodes[node].routes]


def natt_variant(tmp: Path, name: str, **customer) -> Lab:
    data = yaml.safe_load(NATT_LAB.read_text())
    data["tunnels"]["tunnel1"]["customer"] = {"node": "cgw", **customer}
    return load_lab(write(tmp, name, data))


# --- provider NAT gateway ------------------------------------------------------------------


def test_router_beside_a_nat_gateway_default_routes_via_it(nat: Lab) -> None:
    assert routes(nat, "vpc-rtr") == [("0.0.0.0/0", "10.10.0.254")]
    # FRR nodes get their static routes from staticd, in its own file.
    assert "ip route 0.0.0.0/0 10.10.0.254" in render(nat, "vpc-rtr")["staticd.conf"].splitlines()
    # Hosts still go via the router; gateways, the NAT gateway and web need no default.
    assert routes(nat, "app") == [("0.0.0.0/0", "10.10.0.1")]
    for node in ("vgw1", "vgw2", "cgw", "nat-gw", "web"):
        assert routes(nat, node) == [], node


def test_router_without_a_nat_gateway_has_no_default(tmp_path: Path) -> None:
    lab = load_lab(REPO / "topologies/tray-bgp-ikev2.yaml")
    assert routes(lab, "vpc-rtr") == []


def test_nat_gateway_routes_back_the_site_prefixes_it_is_not_on(tmp_path: Path) -> None:
    data = yaml.safe_load(NAT_LAB.read_text())
    data["sites"]["tray"]["prefixes"] = ["10.10.0.0/16"]
    lab = load_lab(write(tmp_path, "wide", data))
    assert routes(lab, "nat-gw") == [("10.10.0.0/16", "10.10.0.1")]  # via the VPC router


def test_nat_and_internet_hosts_run_no_daemons_and_only_nat_gw_masquerades(nat: Lab) -> None:
    assert nat.nodes["nat-gw"].forwarding and not nat.nodes["web"].forwarding
    for node in ("nat-gw", "web"):
        assert set(render(nat, node)) == {"nftables.nft"}
    masquerades = {
        n: [ln.strip() for ln in render(nat, n)["nftables.nft"].splitlines() if "masquerade" in ln]
        for n in nat.nodes
    }
    # Only out of the transit interface: traffic into tunnels never passes a NAT rule.
    assert masquerades == {
        n: (['oifname "internet" masquerade'] if n == "nat-gw" else []) for n in nat.nodes
    }
    # The public site adds no prefixes and the tunnels are those of the plain BGP lab.
    assert [str(n) for n in nat.tunnels["tunnel1"].provider.ts] == [
        "169.254.10.1/32",
        "10.10.0.0/24",
    ]


# --- customer behind NAT ------------------------------------------------------------------


def test_endpoint_behind_nat_binds_its_own_address_and_is_seen_as_the_nat(natt: Lab) -> None:
    for t in natt.tunnels.values():
        assert (str(t.customer.address), str(t.customer.public_address)) == (PRIVATE, PUBLIC)
        assert t.customer.id == PUBLIC  # default: the address the peer sees
        assert t.provider.address == t.provider.public_address
        assert t.provider.id == str(t.provider.address)


def test_swanctl_addresses_and_ids_behind_nat(natt: Lab) -> None:
    cgw = swanctl(natt, "cgw")
    vgw1 = swanctl(natt, "vgw1")
    c, p = cgw["connections"]["tunnel1"], vgw1["connections"]["tunnel1"]
    assert (c["local_addrs"], c["remote_addrs"]) == (PRIVATE, "198.51.100.11")
    assert (p["local_addrs"], p["remote_addrs"]) == ("198.51.100.11", PUBLIC)
    assert c["local"]["id"] == p["remote"]["id"] == PUBLIC
    assert c["remote"]["id"] == p["local"]["id"] == "198.51.100.11"
    # The PSK's owners are the identities both sides agree on.
    assert (
        cgw["secrets"]["ike-tunnel1"]["id-local"],
        cgw["secrets"]["ike-tunnel1"]["id-remote"],
    ) == (PUBLIC, "198.51.100.11")
    assert (
        vgw1["secrets"]["ike-tunnel1"]["id-local"],
        vgw1["secrets"]["ike-tunnel1"]["id-remote"],
    ) == ("198.51.100.11", PUBLIC)


def test_gateway_behind_nat_default_routes_via_it_and_the_nat_routes_back(natt: Lab) -> None:
    assert routes(natt, "cgw") == [("0.0.0.0/0", "192.168.100.1")]
    assert "ip route 0.0.0.0/0 192.168.100.1" in render(natt, "cgw")["staticd.conf"].splitlines()
    assert routes(natt, "cust-nat") == [("172.16.1.0/24", PRIVATE)]
    assert routes(natt, "vgw1") == [] and routes(natt, "vpc-rtr") == []


def test_outside_segment_behind_nat_is_not_a_routed_prefix(natt: Lab) -> None:
    for t in natt.tunnels.values():
        assert [str(n) for n in t.customer.ts][1:] == ["172.16.1.0/24"]
    assert natt.nodes["cgw"].bgp.networks == [IPv4Network("172.16.1.0/24")]


def test_explicit_address_and_id(tmp_path: Path) -> None:
    lab = natt_variant(tmp_path, "ids", address="203.0.113.7", id="cgw.acme.example")
    c, p = lab.tunnels["tunnel1"].customer, lab.tunnels["tunnel1"].provider
    assert (str(c.address), str(c.public_address), c.id) == (
        PRIVATE,
        "203.0.113.7",
        "cgw.acme.example",
    )
    vgw1, cgw = swanctl(lab, "vgw1")["connections"]["tunnel1"], swanctl(lab, "cgw")
    assert vgw1["remote_addrs"] == "203.0.113.7"
    assert (
        vgw1["remote"]["id"]
        == cgw["connections"]["tunnel1"]["local"]["id"]
        == cgw["secrets"]["ike-tunnel1"]["id-local"]
        == "cgw.acme.example"
    )
    assert cgw["connections"]["tunnel1"]["local_addrs"] == PRIVATE
    assert str(p.public_address) == p.id == "198.51.100.11"
    # tunnel2 keeps the derived values.
    assert lab.tunnels["tunnel2"].customer.id == PUBLIC


def test_address_override_without_nat_keeps_the_local_address(tmp_path: Path) -> None:
    """Without a NAT in the lab, 'address' still only changes what the peer sees."""
    lab = load_lab(
        write(
            tmp_path,
            "plain",
            variant(put("tunnels.tunnel1.customer", {"node": "cgw", "address": "203.0.113.9"})),
        )
    )
    c = lab.tunnels["tunnel1"].customer
    assert (str(c.address), str(c.public_address), c.id) == (PUBLIC, "203.0.113.9", "203.0.113.9")
    assert (
        parse_conf(render(lab, "cgw")["swanctl.conf"])["connections"]["tunnel1"]["local_addrs"]
        == PUBLIC
    )


def test_ike_id_with_a_space_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TopologyError) as err:
        natt_variant(tmp_path, "badid", id="cgw acme")
    assert "tunnels.tunnel1.customer.id" in str(err.value)
    assert "an IKE id is an IPv4 address, a host name (FQDN) or user@FQDN" in str(err.value)


def test_gateway_unreachable_even_through_a_nat_is_refused(tmp_path: Path) -> None:
    data = yaml.safe_load(NATT_LAB.read_text())
    data["sites"]["acme"]["nodes"]["cust-nat"]["role"] = "host"
    with pytest.raises(TopologyError) as err:
        load_lab(write(tmp_path, "nonat", data))
    assert "cgw share no segment, and no NAT gateway" in str(err.value)


def test_state_saved_before_the_split_still_loads() -> None:
    old = {
        "node": "cgw",
        "address": "198.51.100.21",
        "ts": ["172.16.1.0/24"],
        "ike": 2,
        "ike_proposals": ["aes256-sha256-modp2048"],
        "esp_proposals": ["aes256-sha256"],
        "ike_lifetime": 1,
        "child_lifetime": 1,
        "dpd": {"delay": 1, "timeout": 1, "action": "clear"},
        "start_action": "start",
        "close_action": "none",
        "psk": "k",
    }
    ep = Endpoint.model_validate(old)
    assert ep.public_address == IPv4Address("198.51.100.21") and ep.id == "198.51.100.21"


# --- diagnosis with a NATed peer --------------------------------------------------------


def test_unanswered_provider_behind_nat_peer_is_not_a_wrong_address() -> None:
    """vici's local_addrs of cgw hold its private address; the provider rightly sends to the
    NAT's. That is 'no answer', not 'wrong peer address'."""
    text = "\n".join(
        f"2026-11-22T02:56:07 {ln}"
        for ln in (
            f"11[IKE] <tunnel1|2> initiating IKE_SA tunnel1[2] to {PUBLIC}",
            f"11[NET] <tunnel1|2> sending packet: from 198.51.100.11[500] to {PUBLIC}[500]",
            "14[IKE] <tunnel1|2> retransmit 1 of request with message ID 0",
        )
    )
    conns = {
        "vgw1": {"local_addrs": ["198.51.100.11"], "remote_addrs": [PUBLIC]},
        "cgw": {"local_addrs": [PRIVATE], "remote_addrs": ["198.51.100.11"]},
    }

    def evidence(public: dict) -> TunnelEvidence:
        ev = TunnelEvidence("tunnel1", "vgw1", "cgw", conns=conns, public=public)
        ev.lines = {
            "vgw1": tunnel_lines(parse_log("vgw1", text), "tunnel1", conns["vgw1"]),
            "cgw": [],
        }
        return ev

    assert [d.cause for d in diagnose_tunnel(evidence({"cgw": PUBLIC}))] == ["peer-not-answering"]
    (wrong,) = diagnose_tunnel(evidence({}))  # without knowing the NAT it would blame it
    assert wrong.cause == "wrong-peer-address"
