"""Every shipped topology comes up and carries traffic both ways through its tunnels.

Runbook: bring the lab up (converged = every SA installed, every BGP session Established,
every remote subnet routed), then ping between the hosts behind each tunnel and prove from
the SA counters that the packets went through the tunnels.
"""

from __future__ import annotations

import pytest

from lab.checks import bgp_problems, route_problems, tunnel_problems
from lab.status import collect
from lab.traffic import hosts_behind, packets, ping

SHIPPED = ["tray-static-ikev1.yaml", "tray-static-ikev2.yaml", "tray-bgp-ikev1.yaml",
           "tray-bgp-ikev2.yaml", "thredd-static.yaml"]
COUNT = 5


@pytest.mark.parametrize("lab", SHIPPED, indirect=True)
def test_converges(lab):
    assert tunnel_problems(lab) == []
    assert bgp_problems(lab) == []
    assert route_problems(lab) == []
    status = collect(lab)
    assert status["dataplane"] in ("userspace", "kernel")
    for tunnel in status["tunnels"]:
        for side in ("provider", "customer"):
            assert tunnel[side]["ike_state"] == "ESTABLISHED"
            assert all(c["state"] == "INSTALLED" for c in tunnel[side]["children"])
            if tunnel["routing"] == "bgp":
                assert tunnel[side]["bgp"]["state"] == "Established"
                assert tunnel[side]["bgp"]["prefixes_received"] >= 1
    for node in status["nodes"]:
        assert all(node["daemons"].values()), f"{node['name']}: {node['daemons']}"


@pytest.mark.parametrize("lab", SHIPPED, indirect=True)
def test_hosts_reach_each_other_through_the_tunnels(lab):
    for tunnel in lab.lab.tunnels.values():
        (p_host, p_addr), = hosts_behind(lab.lab, tunnel.provider)[:1]
        (c_host, c_addr), = hosts_behind(lab.lab, tunnel.customer)[:1]
        # Tunnels whose selectors cover both hosts could carry the packets; the newest SA
        # with matching selectors does, so count over all of them.
        carriers = [t for t in lab.lab.tunnels.values()
                    if any(p_addr in n for n in t.provider.ts)
                    and any(c_addr in n for n in t.customer.ts)]
        before = packets(lab)
        forward = ping(lab, c_host, p_addr, COUNT)
        back = ping(lab, p_host, c_addr, COUNT)
        after = packets(lab)
        assert forward.received == COUNT, forward.output
        assert back.received == COUNT, back.output

        def grew(node_of, direction):
            return sum(after[(t.name, node_of(t))][direction] - before[(t.name, node_of(t))]
                       [direction] for t in carriers)

        # customer gateway encrypts pings and replies out (2 x COUNT); provider decrypts them.
        assert grew(lambda t: t.customer.node, 1) >= 2 * COUNT
        assert grew(lambda t: t.provider.node, 0) >= 2 * COUNT
        assert grew(lambda t: t.provider.node, 1) >= 2 * COUNT


@pytest.mark.parametrize("lab", ["tray-bgp-ikev2.yaml"], indirect=True)
def test_testinfra_hosts_see_the_lab(lab, lab_hosts):
    pc = lab_hosts["pc"]
    assert pc.interface("lan").addresses == ["172.16.1.100"]
    assert pc.run("ip route show default").stdout.startswith("default via 172.16.1.1")
    cgw = lab_hosts["cgw"]
    assert cgw.interface("ipsec0").exists
    assert cgw.process.filter(comm="charon")
