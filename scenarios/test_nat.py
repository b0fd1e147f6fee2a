"""The provider's NAT gateway: non-VPN traffic leaves masqueraded, VPN traffic is never NATed.

Runbook: bring up the Tray BGP lab with a NAT gateway in the VPC and a public web host on the
internet. The VPC router's default route (derived) points at the NAT gateway; the customer's
LAN is more specific, learned over iBGP from the tunnel endpoints. Count packets by source
address with nftables inside the receiving namespaces: web sees only the NAT gateway's
public address, the customer's pc and the VPC's app see each other's real addresses, and the
SA counters show the VPN traffic went through the tunnels.
"""

from __future__ import annotations

import json

import pytest

from lab.observe.convergence import convergence_problems
from lab.ops.traffic import count, counted, hosts_behind, packets, ping

pytestmark = pytest.mark.kernel  # proven on the kernel data plane too

TOPOLOGY = "tray-bgp-nat.yaml"
COUNT = 5
IN, OUT = 0, 1
NAT_PUBLIC, NAT_INSIDE = "198.51.100.1", "10.10.0.254"
VPC, WEB = "10.10.0.0/16", "198.51.100.80"


def test_converges(lab):
    assert convergence_problems(lab) == []


def test_vpc_router_default_routes_via_the_nat_gateway(lab):
    routes = json.loads(lab.exec("vpc-rtr", ["ip", "-j", "route", "show", "default"]).stdout)
    assert [(r.get("gateway"), r.get("protocol")) for r in routes] == [(NAT_INSIDE, "static")]
    # The customer LAN stays more specific, via a VPN gateway (iBGP), not the NAT gateway.
    (lan,) = json.loads(lab.exec("vpc-rtr", ["ip", "-j", "route", "show", "172.16.1.0/24"]).stdout)
    assert lan["gateway"] in ("10.10.0.11", "10.10.0.12") and lan["protocol"] == "bgp"


def test_masquerade_only_out_of_transit_interfaces(lab):
    """The only NAT rule in the lab: nat-gw masquerades what leaves on 'internet'."""
    for node in lab.lab.nodes:
        proc = lab.exec(node, ["nft", "-j", "list", "table", "ip", "vpnlab_nat"])
        if node != "nat-gw":
            assert proc.returncode != 0, f"{node} has a NAT table"
            continue
        rules = [o["rule"]["expr"] for o in json.loads(proc.stdout)["nftables"] if "rule" in o]
        assert rules == [
            [
                {"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "internet"}},
                {"masquerade": None},
            ]
        ], rules


def test_app_reaches_web_only_as_the_nat_gateway(lab):
    count(
        lab,
        "web",
        {
            "from_natgw": f"ip saddr {NAT_PUBLIC}",
            "from_vpc": f"ip saddr {VPC}",
            "icmp": "ip protocol icmp",
        },
    )
    count(
        lab,
        "nat-gw",
        {"app_out": f'iifname "vpc" oifname "internet" ip saddr 10.10.0.100 ip daddr {WEB}'},
        hook="forward",
    )
    result = ping(lab, "app", WEB, COUNT)
    seen, natgw = counted(lab, "web"), counted(lab, "nat-gw")
    print(f"web counters {seen}, nat-gw forward {natgw}")
    assert result.received == COUNT, result.output
    assert seen["from_natgw"] == seen["icmp"] == COUNT  # every echo request, from 198.51.100.1
    assert seen["from_vpc"] == 0  # never a VPC address
    assert natgw["app_out"] == COUNT  # through nat-gw, before masquerading


def test_vpn_traffic_goes_through_the_tunnels_unnatted(lab):
    count(lab, "pc", {"from_app": "ip saddr 10.10.0.100", "from_nat": f"ip saddr {NAT_PUBLIC}"})
    count(lab, "app", {"from_pc": "ip saddr 172.16.1.100", "from_nat": f"ip saddr {NAT_PUBLIC}"})
    count(
        lab,
        "nat-gw",
        {"vpn": "ip daddr 172.16.1.0/24", "vpn_back": "ip saddr 172.16.1.0/24"},
        hook="forward",
    )
    ((pc, pc_addr),) = hosts_behind(lab.lab, lab.lab.tunnels["tunnel1"].customer)[:1]
    before = packets(lab)
    out, back = ping(lab, "app", pc_addr, COUNT), ping(lab, pc, "10.10.0.100", COUNT)
    after = packets(lab)
    at_pc, at_app, natgw = counted(lab, "pc"), counted(lab, "app"), counted(lab, "nat-gw")
    grew = {k: (after[k][IN] - before[k][IN], after[k][OUT] - before[k][OUT]) for k in after}
    print(f"pc {at_pc}, app {at_app}, nat-gw forward {natgw}, SA packets in/out {grew}")
    assert out.received == COUNT and back.received == COUNT, out.output + back.output

    # app's requests and replies reach pc from app's own address; none from the NAT.
    assert at_pc["from_app"] == 2 * COUNT and at_pc["from_nat"] == 0
    assert at_app["from_pc"] == 2 * COUNT and at_app["from_nat"] == 0
    assert natgw["vpn"] == natgw["vpn_back"] == 0  # VPN traffic never even passes nat-gw
    # ... and it crossed the tunnels: the customer gateway encrypted pc's 2 x COUNT.
    assert sum(grew[(t, "cgw")][OUT] for t in lab.lab.tunnels) >= 2 * COUNT
    assert sum(grew[(t, "cgw")][IN] for t in lab.lab.tunnels) >= 2 * COUNT
