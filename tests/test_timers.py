"""Outage bounds follow the configured timers."""

from __future__ import annotations

import pytest
import yaml
from topo_util import base

from lab.topology import load_lab
from lab.topology.model import Retransmit
from lab.topology.timers import MARGIN, dead_peer_detection, failover_bound


def _lab(tmp_path, mutate=lambda d: None):
    data = base()
    data["retransmit"] = {"timeout": 1, "tries": 2, "base": 1.5}
    data["tunnel_defaults"]["dpd"] = {"delay": "2s", "timeout": "6s"}
    mutate(data)
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_lab(path)


def test_retransmit_schedule_sums_the_backoff():
    assert Retransmit(timeout=1, tries=2, base=1.5).give_up_after() == pytest.approx(4.75)
    assert Retransmit(timeout=4, tries=5, base=1.8).give_up_after() == pytest.approx(165.1, abs=0.1)


def test_ikev2_dpd_is_delay_plus_retransmits(tmp_path):
    lab = _lab(tmp_path)
    ep = lab.tunnels["tunnel1"].customer
    assert dead_peer_detection(lab, ep) == pytest.approx(2 + 4.75)
    bound = failover_bound(lab, "tunnel1", "kill-charon")
    assert bound.seconds == pytest.approx(2 + 4.75 + MARGIN)
    assert "retransmits" in bound.reason


def test_ikev1_dpd_is_delay_plus_timeout(tmp_path):
    lab = _lab(tmp_path, lambda d: d["tunnel_defaults"].update(ike=1))
    assert dead_peer_detection(lab, lab.tunnels["tunnel1"].customer) == 8
    assert failover_bound(lab, "tunnel1", "block").seconds == pytest.approx(8 + MARGIN)


def test_dpd_off_on_one_side_means_no_bound(tmp_path):
    def off(d):
        d["tunnels"]["tunnel1"]["customer"] = {"node": "cgw", "dpd": {"delay": 0}}

    lab = _lab(tmp_path, off)
    assert dead_peer_detection(lab, lab.tunnels["tunnel1"].customer) is None
    bound = failover_bound(lab, "tunnel1", "link-down")
    assert bound.seconds is None and bound.holds(1e9)


def test_black_hole_ends_with_the_bgp_hold_timer_or_never(tmp_path):
    bgp = _lab(tmp_path)
    assert (
        failover_bound(bgp, "tunnel1", "black-hole").seconds == bgp.tunnels["tunnel1"].hold + MARGIN
    )
    static = _lab(tmp_path, lambda d: d.update(routing="static"))
    assert failover_bound(static, "tunnel1", "black-hole").seconds is None


def test_terminate_is_rerouting_for_static_and_the_hold_timer_for_bgp(tmp_path):
    static = _lab(tmp_path, lambda d: d.update(routing="static"))
    assert failover_bound(static, "tunnel2", "terminate").seconds == MARGIN
    bgp = _lab(tmp_path)
    assert (
        failover_bound(bgp, "tunnel2", "terminate").seconds == bgp.tunnels["tunnel2"].hold + MARGIN
    )


def test_a_killed_charon_fails_nothing_over_on_the_kernel_data_plane(tmp_path):
    lab = _lab(tmp_path)
    bound = failover_bound(lab, "tunnel1", "kill-charon", "kernel")
    assert bound.seconds == MARGIN and "outlive charon" in bound.reason
    # The userspace data plane dies with charon: DPD must notice, as before.
    assert failover_bound(lab, "tunnel1", "kill-charon", "userspace").seconds > MARGIN
