"""Route-based tunnels: what the mode key chooses, and what the kernel data plane gets.

BGP tunnels default to route mode, static ones to policy mode. A route-mode tunnel whose
two gateways run the kernel data plane gets an XFRM interface per tunnel on each gateway
(if_id numbered per node), one 0.0.0.0/0 CHILD_SA bound to it, and its inside address on
the interface; on the userspace data plane nothing changes (no if_id there).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from topo_util import put, variant, write

from lab.core.errors import TopologyError
from lab.daemons import xfrm
from lab.render.swanctl import connections
from lab.topology import DATAPLANE_ENV, load_lab
from lab.topology.model import Lab

GATEWAYS = {"vgw1", "vgw2", "cgw"}


@pytest.fixture
def bgp(tmp_path: Path) -> Lab:
    return load_lab(write(tmp_path, "bgp", variant()))


def test_bgp_defaults_to_route_static_to_policy(bgp: Lab, tmp_path: Path) -> None:
    assert {t.mode for t in bgp.tunnels.values()} == {"route"}
    static = load_lab(write(tmp_path, "static", variant(put("routing", "static"))))
    assert {t.mode for t in static.tunnels.values()} == {"policy"}


def test_route_mode_with_static_routing_is_refused_by_name(tmp_path: Path) -> None:
    path = write(
        tmp_path, "bad", variant(put("routing", "static"), put("tunnels.tunnel1.mode", "route"))
    )
    with pytest.raises(TopologyError) as exc:
        load_lab(path)
    assert "tunnels.tunnel1.mode" in str(exc.value) and "need BGP" in str(exc.value)


def test_userspace_keeps_narrow_selectors_and_no_if_id(bgp: Lab) -> None:
    lab = bgp.on_kernel(set())  # no gateway with kernel ESP
    child = connections(lab, "cgw")["tunnel1"]["children"]["tunnel1"]
    assert "if_id_in" not in child
    assert child["local_ts"][0] == "169.254.10.2/32"
    assert xfrm.setup_commands(lab, "cgw") == []


def test_kernel_route_mode_binds_one_any_child_per_tunnel_interface(bgp: Lab) -> None:
    lab = bgp.on_kernel(GATEWAYS)
    conns = connections(lab, "cgw")
    for tunnel, if_id in (("tunnel1", "1"), ("tunnel2", "2")):
        (child,) = conns[tunnel]["children"].values()
        assert child["local_ts"] == child["remote_ts"] == ["0.0.0.0/0"]
        assert child["if_id_in"] == child["if_id_out"] == if_id
    # The provider's gateways hold one tunnel each: each its own xfrm1.
    assert connections(lab, "vgw2")["tunnel2"]["children"]["tunnel2"]["if_id_out"] == "1"


def test_kernel_route_mode_interfaces_carry_the_inside_addresses(bgp: Lab) -> None:
    lab = bgp.on_kernel(GATEWAYS)
    steps = xfrm.setup_commands(lab, "cgw")
    assert "ip link add xfrm1 type xfrm dev internet if_id 1" in steps
    assert "ip addr replace 169.254.10.2/30 dev xfrm1" in steps
    assert "ip addr replace 169.254.11.2/30 dev xfrm2" in steps
    assert xfrm.interfaces(lab, "cgw") == {"xfrm1": "tunnel1", "xfrm2": "tunnel2"}


def test_an_interface_needs_the_kernel_on_both_ends(bgp: Lab) -> None:
    lab = bgp.on_kernel({"cgw", "vgw1"})
    assert lab.tunnels["tunnel1"].customer.if_id == 1
    assert lab.tunnels["tunnel2"].customer.if_id is None  # vgw2 is userspace


def test_policy_mode_on_the_kernel_keeps_the_subnets(tmp_path: Path) -> None:
    lab = load_lab(write(tmp_path, "p", variant(put("tunnels.tunnel1.mode", "policy"))))
    lab = lab.on_kernel(GATEWAYS)
    child = connections(lab, "cgw")["tunnel1"]["children"]["tunnel1"]
    assert "if_id_in" not in child and "0.0.0.0/0" not in child["local_ts"]
    assert connections(lab, "cgw")["tunnel2"]["children"]["tunnel2"]["if_id_in"] == "2"


def test_dataplane_env_stands_in_for_the_topology(
    bgp: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "env", variant())
    monkeypatch.setenv(DATAPLANE_ENV, "kernel")
    assert load_lab(path).dataplane == "kernel"
    monkeypatch.setenv(DATAPLANE_ENV, "fast")
    with pytest.raises(TopologyError) as exc:
        load_lab(path)
    assert DATAPLANE_ENV in str(exc.value) and "'fast'" in str(exc.value)


XFRM_STATE = """src 198.51.100.21 dst 198.51.100.11
	proto esp spi 0xc4c08c34 reqid 1 mode tunnel
	replay-window 0 flag af-unspec
	auth-trunc hmac(sha256) 0xfdd91b53 128
	enc cbc(aes) 0xb7908d886c351fc518386cda4a0c882f5cc3a3d2eeeaeee55e766d23223b0fcf
	if_id 0x1
src 198.51.100.11 dst 198.51.100.21
	proto esp spi 0x0a6958fc reqid 2 mode tunnel
	aead rfc4106(gcm(aes)) 0x00112233445566778899aabbccddeeff01020304 128
src 198.51.100.11 dst 198.51.100.21
	proto comp spi 0x00001234 reqid 3 mode tunnel
"""


def test_kernel_sas_gives_each_esp_sa_its_keys_as_proposal_keywords() -> None:
    cbc, gcm = xfrm.kernel_sas(XFRM_STATE)  # the IPComp state is not ESP: left out
    assert (cbc.spi, cbc.proposal, cbc.integrity_key) == ("c4c08c34", "aes256-sha256", "fdd91b53")
    assert (gcm.spi, gcm.proposal, gcm.integrity_key) == ("0a6958fc", "aes128gcm16", "")
    assert gcm.encryption_key.endswith("01020304")  # key and salt, as Wireshark wants them


def test_policy_mode_on_the_kernel_ranks_each_gateways_tunnels_in_order(tmp_path: Path) -> None:
    lab = load_lab(write(tmp_path, "s", variant(put("routing", "static")))).on_kernel(GATEWAYS)
    ranks = [connections(lab, "cgw")[t]["children"][t]["priority"] for t in ("tunnel1", "tunnel2")]
    assert ranks == ["1001", "1002"]  # tunnel 1's policies win on the customer gateway
    # Userspace: charon's automatic priorities, as before.
    plain = load_lab(write(tmp_path, "u", variant(put("routing", "static")))).on_kernel(set())
    assert "priority" not in connections(plain, "cgw")["tunnel1"]["children"]["tunnel1"]


def test_counts_leave_out_the_socket_bypass_policies() -> None:
    policies = "src 0.0.0.0/0 dst 0.0.0.0/0\n\tsocket in priority 0\n" + (
        "src 10.0.0.0/24 dst 10.1.0.0/24\n\tdir out priority 1001\n\ttmpl src 1.1.1.1 dst 2.2.2.2\n"
    )
    assert xfrm.counts(XFRM_STATE, policies) == (3, 1)
