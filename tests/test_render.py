"""Rendered configs carry the facts the lab depends on.

The tray BGP topology (IKEv2, two tunnels to one customer gateway) and variants built from
it: statically routed IKEv1, and BGP over IKEv1. Files are parsed, not just grepped, where
the format allows it, so a fact must sit in the right section to count.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from topo_util import drop, put, variant, write

from lab.core.errors import TopologyError
from lab.render import render_node
from lab.render.swanctl import REDACTED
from lab.topology import load_lab
from lab.topology.model import Lab

PSK = "Sup3r-s3cret-never-shown"
NODE_ROOT = Path("/var/lib/vpnlab/render-test")
LAN2 = (
    put("segments.lan2", "172.16.2.0/24"),
    put("sites.acme.nodes.cgw.interfaces.lan2", "172.16.2.1"),
)


def _lab(tmp: Path, name: str, *edits) -> Lab:
    return load_lab(write(tmp, name, variant(put("tunnel_defaults.psk", PSK), *edits)))


@pytest.fixture(scope="module")
def bgp(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    return _lab(tmp_path_factory.mktemp("bgp"), "bgp")


@pytest.fixture(scope="module")
def static_v1(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    """Static routing, IKEv1, and a second customer LAN so quick mode has to split."""
    return _lab(
        tmp_path_factory.mktemp("static"),
        "static",
        put("routing", "static"),
        put("tunnel_defaults.ike", 1),
        *LAN2,
    )


@pytest.fixture(scope="module")
def bgp_v1(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    return _lab(tmp_path_factory.mktemp("bgpv1"), "bgpv1", put("tunnel_defaults.ike", 1))


def render(lab: Lab, node: str, **kwargs) -> dict[str, str]:
    return render_node(lab, lab.nodes[node], NODE_ROOT / node, **kwargs)


def parse_conf(text: str) -> dict:
    """strongSwan's ``key = value`` / ``section { }`` format as nested dicts."""
    root: dict = {}
    stack = [root]
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("{"):
            section: dict = {}
            stack[-1][line[:-1].strip()] = section
            stack.append(section)
        elif line == "}":
            stack.pop()
        elif line.startswith("include "):
            stack[-1].setdefault("include", []).append(line.split(None, 1)[1])
        else:
            key, sep, value = line.partition("=")
            assert sep, f"not key = value: {raw!r}"
            stack[-1][key.strip()] = value.strip()
    assert len(stack) == 1, "unbalanced braces"
    return root


def swanctl(lab: Lab, node: str, **kwargs) -> dict:
    return parse_conf(render(lab, node, **kwargs)["swanctl.conf"])


def frr_lines(lab: Lab, node: str) -> list[str]:
    """staticd's and bgpd's files, as one list of stripped lines."""
    files = render(lab, node)
    return [
        line.strip()
        for daemon in ("staticd", "bgpd")
        for line in files[f"{daemon}.conf"].splitlines()
    ]


def address_family(lines: list[str]) -> list[str]:
    start = lines.index("address-family ipv4 unicast")
    return lines[start + 1 : lines.index("exit-address-family")]


# --- swanctl.conf ------------------------------------------------------------------------


def test_provider_connection_addresses_and_selectors(bgp: Lab) -> None:
    conns = swanctl(bgp, "vgw1")["connections"]
    assert set(conns) == {"tunnel1"}  # vgw1 ends tunnel1 only
    conn = conns["tunnel1"]
    assert conn["version"] == "2"
    assert conn["local_addrs"] == "198.51.100.11"
    assert conn["remote_addrs"] == "198.51.100.21"
    assert conn["local"] == {"auth": "psk", "id": "198.51.100.11"}
    assert conn["remote"] == {"auth": "psk", "id": "198.51.100.21"}
    # IKEv2: one CHILD_SA with the inside /32 and the routed prefixes as selector lists.
    child = conn["children"]["tunnel1"]
    assert list(conn["children"]) == ["tunnel1"]
    assert child["local_ts"] == "169.254.10.1/32, 10.10.0.0/24"
    assert child["remote_ts"] == "169.254.10.2/32, 172.16.1.0/24"
    assert child["mode"] == "tunnel"
    # The provider waits for the customer and clears dead peers; it does not redial.
    assert child["start_action"] == "none"
    assert child["dpd_action"] == "clear"
    assert conn["dpd_delay"] == "2s"


def test_customer_gateway_has_both_tunnels(bgp: Lab) -> None:
    conns = swanctl(bgp, "cgw")["connections"]
    assert set(conns) == {"tunnel1", "tunnel2"}
    for name, peer, inside in (
        ("tunnel1", "198.51.100.11", "169.254.10"),
        ("tunnel2", "198.51.100.12", "169.254.11"),
    ):
        conn = conns[name]
        assert conn["local_addrs"] == "198.51.100.21"
        assert conn["remote_addrs"] == peer
        child = conn["children"][name]
        assert child["local_ts"] == f"{inside}.2/32, 172.16.1.0/24"
        assert child["remote_ts"] == f"{inside}.1/32, 10.10.0.0/24"
        assert child["start_action"] == "start"  # the customer dials
        assert child["dpd_action"] == "restart"


def test_ikev1_splits_child_sas_per_subnet_pair(static_v1: Lab) -> None:
    conn = swanctl(static_v1, "vgw1")["connections"]["tunnel1"]
    assert conn["version"] == "1"
    assert conn["aggressive"] == "no"
    assert conn["dpd_timeout"] == "30s"
    pairs = {name: (c["local_ts"], c["remote_ts"]) for name, c in conn["children"].items()}
    assert pairs == {
        "tunnel1-1": ("10.10.0.0/24", "172.16.1.0/24"),
        "tunnel1-2": ("10.10.0.0/24", "172.16.2.0/24"),
    }


def test_ikev1_bgp_gives_inside_addresses_their_own_child_sa(bgp_v1: Lab) -> None:
    conn = swanctl(bgp_v1, "cgw")["connections"]["tunnel2"]
    pairs = {name: (c["local_ts"], c["remote_ts"]) for name, c in conn["children"].items()}
    assert pairs == {
        "tunnel2-1": ("169.254.11.2/32", "169.254.11.1/32"),
        "tunnel2-2": ("172.16.1.0/24", "10.10.0.0/24"),
    }


def test_every_child_sa_of_a_node_has_its_own_fixed_reqid(bgp_v1: Lab, bgp: Lab) -> None:
    # Dynamic reqids can collide across tunnels after a DPD restart (strongSwan #1855).
    for lab, node, count in ((bgp_v1, "cgw", 4), (bgp, "cgw", 2), (bgp, "vgw1", 1)):
        conns = swanctl(lab, node)["connections"]
        reqids = [c["reqid"] for conn in conns.values() for c in conn["children"].values()]
        assert reqids == [str(i) for i in range(1, count + 1)], (node, reqids)


def test_ikev2_static_has_no_inside_selectors(tmp_path: Path) -> None:
    lab = _lab(tmp_path, "static-v2", put("routing", "static"), *LAN2)
    child = swanctl(lab, "vgw2")["connections"]["tunnel2"]["children"]["tunnel2"]
    assert child["local_ts"] == "10.10.0.0/24"
    assert child["remote_ts"] == "172.16.1.0/24, 172.16.2.0/24"


def test_psk_redacted_unless_revealed(bgp: Lab) -> None:
    text = render(bgp, "cgw")["swanctl.conf"]
    assert PSK not in text
    secrets = parse_conf(text)["secrets"]
    assert set(secrets) == {"ike-tunnel1", "ike-tunnel2"}
    assert all(s["secret"] == REDACTED for s in secrets.values())
    assert secrets["ike-tunnel2"]["id-local"] == "198.51.100.21"
    assert secrets["ike-tunnel2"]["id-remote"] == "198.51.100.12"

    revealed = swanctl(bgp, "cgw", reveal_secrets=True)["secrets"]
    assert all(s["secret"] == PSK for s in revealed.values())


# --- strongswan.conf ---------------------------------------------------------------------


def test_strongswan_conf_userspace(bgp: Lab) -> None:
    charon = parse_conf(render(bgp, "vgw1")["strongswan.conf"])["charon"]
    plugins = charon["load"].split()
    # kernel-libipsec must register before kernel-netlink to own the data plane.
    assert plugins[0] == "kernel-libipsec"
    assert "kernel-netlink" in plugins and "vici" in plugins
    assert charon["routing_table"] == "0"
    assert charon["plugins"]["vici"]["socket"] == f"unix://{NODE_ROOT}/vgw1/charon.vici"
    assert charon["filelog"]["charon"]["path"] == f"{NODE_ROOT}/vgw1/charon.log"


def test_strongswan_conf_includes_the_key_logger_folder(bgp: Lab) -> None:
    # Empty unless `vpnlab capture --keys` is taking keys (lab/daemons/keylog.py).
    conf = parse_conf(render(bgp, "vgw1")["strongswan.conf"])
    assert conf["include"] == [f"{NODE_ROOT}/vgw1/keylog.d/*.conf"]


def test_strongswan_conf_kernel(bgp: Lab) -> None:
    charon = parse_conf(render(bgp, "vgw1", userspace=False)["strongswan.conf"])["charon"]
    plugins = charon["load"].split()
    assert "kernel-libipsec" not in plugins
    assert "kernel-netlink" in plugins
    assert charon["routing_table"] == "0"


def test_only_nodes_with_tunnels_run_charon(bgp: Lab) -> None:
    for node in ("vpc-rtr", "app", "pc"):
        files = render(bgp, node)
        assert "strongswan.conf" not in files and "swanctl.conf" not in files, node
    for node in ("vgw1", "vgw2", "cgw"):
        assert {"strongswan.conf", "swanctl.conf"} <= set(render(bgp, node)), node


# --- staticd.conf, bgpd.conf ----------------------------------------------------------------


def test_provider_gateway_bgp(bgp: Lab) -> None:
    lines = frr_lines(bgp, "vgw1")
    assert "router bgp 64512" in lines
    assert "no bgp ebgp-requires-policy" in lines
    # eBGP to the customer over the tunnel's inside addresses; keepalive 1 -> hold 3.
    assert "neighbor 169.254.10.2 remote-as 65001" in lines
    assert "neighbor 169.254.10.2 update-source 169.254.10.1" in lines
    assert "neighbor 169.254.10.2 timers 1 3" in lines
    # iBGP to the VPC router, with next-hop-self so the router can reach customer routes.
    assert "neighbor 10.10.0.1 remote-as 64512" in lines
    assert "neighbor 10.10.0.1 update-source 10.10.0.11" in lines
    family = address_family(lines)
    assert "network 10.10.0.0/24" in family
    assert "neighbor 10.10.0.1 next-hop-self" in family
    assert "neighbor 169.254.10.2 next-hop-self" not in family


def test_customer_gateway_bgp(bgp: Lab) -> None:
    lines = frr_lines(bgp, "cgw")
    assert "router bgp 65001" in lines
    assert "no bgp ebgp-requires-policy" in lines
    for inside in ("169.254.10", "169.254.11"):
        assert f"neighbor {inside}.1 remote-as 64512" in lines
        assert f"neighbor {inside}.1 update-source {inside}.2" in lines
        assert f"neighbor {inside}.1 timers 1 3" in lines
    assert address_family(lines) == ["network 172.16.1.0/24"]


def test_default_timers_when_topology_sets_none(tmp_path: Path) -> None:
    lab = _lab(
        tmp_path,
        "timers",
        drop("tunnels.tunnel1.keepalive"),
        put("tunnels.tunnel2.keepalive", "5s"),
    )
    lines = frr_lines(lab, "cgw")
    assert "neighbor 169.254.10.1 timers 10 30" in lines
    assert "neighbor 169.254.11.1 timers 5 15" in lines


def test_vpc_router_bgp_peers_with_both_gateways(bgp: Lab) -> None:
    lines = frr_lines(bgp, "vpc-rtr")
    assert "router bgp 64512" in lines
    assert "neighbor 10.10.0.11 remote-as 64512" in lines
    assert "neighbor 10.10.0.12 remote-as 64512" in lines
    assert not [line for line in lines if line.startswith("ip route")]


def test_static_vpc_router_learns_tunnel_routes_over_passive_ibgp(static_v1: Lab) -> None:
    # Like a VPC route table with propagation: no static routes, iBGP from each gateway.
    lines = frr_lines(static_v1, "vpc-rtr")
    assert not [line for line in lines if line.startswith("ip route")]
    assert "router bgp 64512" in lines
    for gw in ("10.10.0.11", "10.10.0.12"):
        assert f"neighbor {gw} remote-as 64512" in lines
        assert f"neighbor {gw} passive" in lines
        assert f"neighbor {gw} timers 1 3" in lines


def test_static_gateways_pass_only_tunnel_routes_with_tunnel_order_preference(
    static_v1: Lab,
) -> None:
    for node, pref in (("vgw1", 200), ("vgw2", 190)):
        lines = frr_lines(static_v1, node)
        assert [line for line in lines if line.startswith("ip prefix-list TUNNEL-ROUTES")] == [
            "ip prefix-list TUNNEL-ROUTES seq 5 permit 172.16.1.0/24",
            "ip prefix-list TUNNEL-ROUTES seq 10 permit 172.16.2.0/24",
        ]
        assert f"set local-preference {pref}" in lines
        af = address_family(lines)
        assert "redistribute kernel route-map TUNNEL-ROUTES" in af
        assert f"neighbor 10.10.0.1 route-map PREFER-{pref} out" in af
        assert "neighbor 10.10.0.1 next-hop-self" in af
        assert not [line for line in af if line.startswith("network ")]


def test_static_customer_gateway_without_router_runs_no_frr(static_v1: Lab) -> None:
    files = render(static_v1, "cgw")
    assert "bgpd.conf" not in files and "staticd.conf" not in files


# --- hosts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "via"),
    [("app", "10.10.0.1"), ("pc", "172.16.1.1")],
    ids=["provider-host-via-router", "customer-host-via-gateway"],
)
def test_hosts_default_route(bgp: Lab, host: str, via: str) -> None:
    node = bgp.nodes[host]
    defaults = [r for r in node.routes if str(r.to) == "0.0.0.0/0"]
    assert [str(r.via) for r in defaults] == [via]
    assert not node.forwarding
    assert set(render(bgp, host)) == {"nftables.nft"}


# --- the PSK stays secret ----------------------------------------------------------------


def test_psk_not_in_repr_or_json(bgp: Lab) -> None:
    assert PSK not in repr(bgp)
    assert PSK not in str(bgp)
    assert PSK not in bgp.model_dump_json()
    assert PSK not in repr(bgp.tunnels["tunnel1"].customer)
    # Only the state file asks for it, explicitly.
    assert PSK in bgp.model_dump_json(context={"reveal_secrets": True})


@pytest.mark.parametrize(
    "edits",
    [
        (put("tunnel_defaults.psk", {"env": PSK}),),
        (put("tunnels.tunnel1.psk", ["not", "a", "string"]),),
        (put("tunnels.tunnel1.pks", PSK),),
        (put("tunnels.tunnel1.inside", "169.254.10.0/29"),),
        (drop("sites.acme.asn"),),
    ],
    ids=["key-as-env-name", "psk-wrong-type", "misspelt-psk-field", "other-error", "resolve-error"],
)
def test_psk_not_in_topology_errors(tmp_path: Path, edits: tuple) -> None:
    with pytest.raises(TopologyError) as info:
        _lab(tmp_path, "leak", *edits)
    assert PSK not in info.value.message
    assert PSK not in repr(info.value)
