"""Every shipped topology comes up and carries traffic both ways through its tunnels.

Runbook: bring the lab up (converged = every SA installed, every BGP session Established,
every remote subnet routed), then ping between the hosts behind each tunnel and prove from
the SA counters that the packets went through the tunnels.
"""

from __future__ import annotations

import re

import pytest

from lab.observe.convergence import bgp_problems, route_problems, tunnel_problems
from lab.observe.status import collect
from lab.ops.traffic import hosts_behind, packets, ping

pytestmark = (
    pytest.mark.every_runtime
)  # every shipped topology on every runtime: addressing and images differ

# Marked kernel: also proven on the kernel data plane ('setup.sh test' runs them again there;
# test_nat.py and test_natt.py prove the two NAT labs on it).
ON_KERNEL = pytest.mark.kernel
SHIPPED = [
    pytest.param("tray-static-ikev1.yaml", marks=ON_KERNEL),
    pytest.param("tray-static-ikev2.yaml", marks=ON_KERNEL),
    pytest.param("tray-bgp-ikev1.yaml", marks=ON_KERNEL),
    pytest.param("tray-bgp-ikev2.yaml", marks=ON_KERNEL),
    pytest.param("thredd-static.yaml", marks=ON_KERNEL),
    "tray-bgp-nat.yaml",
    "tray-natt.yaml",
]
COUNT = 5
IN, OUT = 0, 1


@pytest.mark.parametrize("lab", SHIPPED, indirect=True)
def test_converges(lab):
    assert tunnel_problems(lab) == []
    assert bgp_problems(lab) == []
    assert route_problems(lab) == []
    status = collect(lab).model_dump()  # the shape `status --json` prints
    gateways = {n.name for n in lab.lab.nodes.values() if n.charon}
    assert set(status["dataplane"]) == gateways
    assert set(status["dataplane"].values()) <= {"userspace", "kernel"}
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
        ((p_host, p_addr),) = hosts_behind(lab.lab, tunnel.provider)[:1]
        ((c_host, c_addr),) = hosts_behind(lab.lab, tunnel.customer)[:1]
        # Tunnels whose selectors cover both hosts could carry the packets; the newest SA
        # with matching selectors does, so count over all of them.
        carriers = [
            t
            for t in lab.lab.tunnels.values()
            if any(p_addr in n for n in t.provider.ts) and any(c_addr in n for n in t.customer.ts)
        ]
        before = packets(lab)
        forward = ping(lab, c_host, p_addr, COUNT)
        back = ping(lab, p_host, c_addr, COUNT)
        after = packets(lab)
        assert forward.received == COUNT, forward.output
        assert back.received == COUNT, back.output

        # The customer gateway encrypts pings and replies (2 x COUNT); the provider decrypts
        # them and encrypts as many back.
        assert _grew(before, after, carriers, "customer", OUT) >= 2 * COUNT
        assert _grew(before, after, carriers, "provider", IN) >= 2 * COUNT
        assert _grew(before, after, carriers, "provider", OUT) >= 2 * COUNT


@pytest.mark.parametrize("lab", SHIPPED, indirect=True)
def test_esp_is_udp_encapsulated_where_the_data_plane_or_a_nat_needs_it(lab):
    """The userspace data plane always sends ESP in UDP 4500; the kernel's only when a NAT
    sits between the gateways (NAT-T), else as IP protocol 50."""
    for t in lab.lab.tunnels.values():
        natted = any(ep.public_address != ep.address for ep in (t.provider, t.customer))
        for ep in (t.provider, t.customer):
            sa = lab.charon(ep.node).ike_sas()[t.name]
            udp = natted or lab.dataplane(ep.node) == "userspace"
            encap = {c.get("encap", "no") for c in sa["child-sas"].values()}
            assert encap == {"yes" if udp else "no"}, f"{t.name} on {ep.node}: encap {encap}"


def _grew(before: dict, after: dict, carriers: list, role: str, direction: int) -> int:
    """Packets counted, in one direction, on one side of the carrying tunnels' SAs."""
    keys = [(t.name, getattr(t, role).node) for t in carriers]
    return sum(after[k][direction] - before[k][direction] for k in keys)


@pytest.mark.parametrize(
    "lab", [pytest.param("tray-bgp-ikev2.yaml", marks=ON_KERNEL)], indirect=True
)
def test_testinfra_hosts_see_the_lab(lab, lab_hosts):
    pc = lab_hosts["pc"]
    assert pc.interface("lan").addresses == ["172.16.1.100"]
    assert pc.run("ip route show default").stdout.startswith("default via 172.16.1.1")
    cgw = lab_hosts["cgw"]
    # The tunnels' interfaces differ by data plane: one TUN device for all (userspace),
    # or one XFRM interface per route-based tunnel (kernel).
    if lab.dataplane("cgw") == "userspace":
        assert cgw.interface("ipsec0").exists
        assert not cgw.interface("xfrm1").exists
    else:
        assert not cgw.interface("ipsec0").exists
        assert cgw.interface("xfrm1").exists and cgw.interface("xfrm2").exists
    assert cgw.process.filter(comm="charon")


def test_a_line_frr_rejects_stops_the_bring_up(lab_runtime, monkeypatch):
    """FRR's daemons read their own files and skip what they reject: vpnlab must not."""
    from lab.core.errors import LabError
    from lab.ops import bringup
    from lab.session.cleanup import leftovers
    from lab.testing.plugin import lab_name, topology_path
    from lab.topology import load_lab

    def with_a_typo(lab, node, *args, **kwargs):
        files = render_node(lab, node, *args, **kwargs)
        if "bgpd.conf" in files:
            files["bgpd.conf"] += f"router bgp {node.bgp.asn}\n neighbour 192.0.2.9 remote-as 1\n"
        return files

    from lab.render import render_node

    monkeypatch.setattr(bringup, "render_node", with_a_typo)
    path = topology_path("tray-bgp-ikev2.yaml")
    lab = load_lab(path, name=lab_name(path, "-rej"))
    try:
        running = bringup.up(lab, runtime=lab_runtime)
    except LabError as exc:
        assert re.search(
            r"FRR rejected its configuration:\n.*config line \d+:\s+"
            r"neighbour 192.0.2.9",
            str(exc),
        ), str(exc)
    else:
        running.down()
        pytest.fail("the lab came up with a line bgpd rejected")
    assert leftovers(lab.name) == []
