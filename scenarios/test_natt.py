"""A customer gateway behind a NAT device still brings its tunnels up (NAT-T) and carries traffic.

Runbook: bring up the Tray BGP lab whose customer gateway cgw sits on a private WAN
(192.168.100.10) behind cust-nat, which masquerades it to 198.51.100.21 on the internet. The
provider is configured for 198.51.100.21 (address and IKE id) and cgw for its own private
address with 198.51.100.21 as its id. On this machine's userspace data plane UDP encapsulation
is always forced and both sides always report "nat-remote", so neither proves a NAT: the IKE
SAs' addresses do (the provider talks to the NAT's public address, cgw from its private one),
and so does cgw's own "nat-local" (its NAT-D hash did not match: a real NAT in front of it).
nftables counters show cgw's IKE/ESP crossing cust-nat and reaching the provider only from the
NAT's address; pings both ways move the SA counters and arrive un-NATed inside the tunnels.
"""

from __future__ import annotations

import json

import pytest

from lab.observe.convergence import convergence_problems
from lab.ops.traffic import count, counted, packets, ping

pytestmark = pytest.mark.kernel  # proven on the kernel data plane too

TOPOLOGY = "tray-natt.yaml"
PRIVATE, PUBLIC, NAT_WAN = "192.168.100.10", "198.51.100.21", "192.168.100.1"
COUNT = 5
IN, OUT = 0, 1


def test_converges_behind_nat(lab):
    assert convergence_problems(lab) == []
    cgw = json.loads(lab.exec("cgw", ["ip", "-j", "route", "show", "default"]).stdout)
    assert [r["gateway"] for r in cgw] == [NAT_WAN]  # derived: cgw reaches the internet via NAT


def test_provider_sees_the_nat_cgw_its_private_address(lab):
    for t in lab.lab.tunnels.values():
        p = lab.charon(t.provider.node).ike_sas()[t.name]
        c = lab.charon("cgw").ike_sas()[t.name]
        print(
            f"{t.name}: {t.provider.node} {p['local-host']}:{p['local-port']} <-> "
            f"{p['remote-host']}:{p['remote-port']} id {p['remote-id']} nat-local="
            f"{p.get('nat-local', 'no')} nat-remote={p.get('nat-remote', 'no')}; cgw "
            f"{c['local-host']}:{c['local-port']} id {c['local-id']} nat-local="
            f"{c.get('nat-local', 'no')} nat-remote={c.get('nat-remote', 'no')}"
        )
        assert p["state"] == c["state"] == "ESTABLISHED"
        assert (p["remote-host"], p["remote-id"]) == (PUBLIC, PUBLIC)
        assert (c["local-host"], c["local-id"]) == (PRIVATE, PUBLIC)
        assert c["remote-host"] == p["local-host"] == str(t.provider.address)
        assert c["local-port"] == p["remote-port"] == "4500"  # NAT-T port (ports kept)
        assert c.get("nat-local") == "yes"  # a real NAT in front of cgw
        assert p.get("nat-local", "no") == "no"  # none in front of the provider
        assert all(child["encap"] == "yes" for child in p["child-sas"].values())


def test_traffic_both_ways_through_the_tunnels_and_the_nat(lab):
    count(
        lab,
        "cust-nat",
        {"ike_esp": f'iifname "wan" oifname "internet" ip saddr {PRIVATE} udp dport 4500'},
        hook="forward",
    )
    for t in lab.lab.tunnels.values():
        count(
            lab,
            t.provider.node,
            {
                "from_nat": f"ip saddr {PUBLIC} udp dport 4500",
                "from_private": "ip saddr 192.168.100.0/24",
            },
        )
    count(lab, "app", {"from_pc": "ip saddr 172.16.1.100"})
    count(lab, "pc", {"from_app": "ip saddr 10.10.0.100"})

    before = packets(lab)
    forward, back = ping(lab, "pc", "10.10.0.100", COUNT), ping(lab, "app", "172.16.1.100", COUNT)
    after = packets(lab)
    grew = {k: (after[k][IN] - before[k][IN], after[k][OUT] - before[k][OUT]) for k in after}
    at = {n: counted(lab, n) for n in ("cust-nat", "vgw1", "vgw2", "app", "pc")}
    print(f"SA packets in/out {grew}; counters {at}")
    assert forward.received == COUNT and back.received == COUNT, forward.output + back.output

    # Both ways through the tunnels: cgw encrypted pc's requests and replies, the provider
    # decrypted them and encrypted as many back.
    gw = lab.lab.tunnels
    assert sum(grew[(t, "cgw")][OUT] for t in gw) >= 2 * COUNT
    assert sum(grew[(t, "cgw")][IN] for t in gw) >= 2 * COUNT
    assert sum(grew[(t, gw[t].provider.node)][IN] for t in gw) >= 2 * COUNT
    assert sum(grew[(t, gw[t].provider.node)][OUT] for t in gw) >= 2 * COUNT
    # The ESP-in-UDP left through cust-nat from cgw's private address and reached the
    # provider only from the NAT's public one.
    assert at["cust-nat"]["ike_esp"] >= 2 * COUNT
    assert at["vgw1"]["from_nat"] + at["vgw2"]["from_nat"] >= 2 * COUNT
    assert at["vgw1"]["from_private"] == at["vgw2"]["from_private"] == 0
    # Inside the tunnels nothing is NATed: the hosts see each other's own addresses.
    assert at["app"]["from_pc"] == at["pc"]["from_app"] == 2 * COUNT
