"""Which data plane a gateway runs: what its kernel offers, unless one was asked for."""

from __future__ import annotations

import pytest
from topo_util import REPO, put, variant, write

from lab.core.errors import LabError
from lab.daemons.dataplane import AUTO, KERNEL, USERSPACE, choose
from lab.topology import load_lab


@pytest.mark.parametrize("offered", [KERNEL, USERSPACE])
def test_auto_takes_what_the_kernel_offers(offered):
    assert choose(AUTO, offered, "vgw1") == offered


@pytest.mark.parametrize("offered", [KERNEL, USERSPACE])
def test_userspace_can_always_be_had(offered):
    assert choose(USERSPACE, offered, "vgw1") == USERSPACE


def test_kernel_where_the_kernel_has_esp():
    assert choose(KERNEL, KERNEL, "vgw1") == KERNEL


def test_kernel_asked_for_without_esp_names_the_node():
    with pytest.raises(LabError, match=r"^cgw: data plane 'kernel' asked for, but .* no ESP"):
        choose(KERNEL, USERSPACE, "cgw")


def test_the_topology_says_which_plane_it_asks_for(tmp_path, monkeypatch):
    monkeypatch.delenv("VPNLAB_DATAPLANE", raising=False)  # as a user's run, not the suite's
    assert load_lab(REPO / "topologies/tray-bgp-ikev2.yaml").dataplane == AUTO
    lab = load_lab(write(tmp_path, "userspace", variant(put("dataplane", "userspace"))))
    assert lab.dataplane == USERSPACE
