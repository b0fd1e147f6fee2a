"""A lab whose networks cover most of Docker's address pools still gets a management
network outside them.

On Docker every node has a management interface (mgmt0, for vici) whose subnet Docker
picks from its address pools; that subnet is a connected route in the node, so if it
overlapped a lab network the node would send lab packets out of mgmt0. Docker hands out
its pools in turn, so one bring-up in 31 drew 192.168.48.0/20 over the Thredd LAN.

Runbook: take the Thredd lab (LAN 192.168.50.0/24) and add segments covering
172.16.0.0/12 and 192.168.128.0/17, so that 24 of Docker's 31 default pools overlap the
lab; bring it up; no node has a route out of mgmt0 into a lab network, and the hosts
behind each tunnel reach each other.
"""

from __future__ import annotations

import json
from ipaddress import IPv4Network

import pytest
import yaml

from lab.ops.traffic import hosts_behind, ping
from lab.testing.plugin import lab_name, running_lab, topology_path

pytestmark = pytest.mark.every_runtime  # the management network is Docker's

WIDE = {"wide172": "172.16.0.0/12", "wide192": "192.168.128.0/17"}


def test_management_network_avoids_the_lab_networks(tmp_path, lab_runtime):
    topo = yaml.safe_load(topology_path("thredd-static.yaml").read_text())
    topo["segments"].update(WIDE)
    path = tmp_path / "thredd-wide.yaml"
    path.write_text(yaml.safe_dump(topo))

    with running_lab(path, name=lab_name(path), runtime=lab_runtime) as lab:
        plan = lab.lab.address_plan()
        assert {IPv4Network(n) for n in WIDE.values()} <= set(plan)
        if lab_runtime == "docker":
            for node in lab.lab.nodes:
                routes = json.loads(
                    lab.exec(
                        node, ["ip", "-j", "-4", "route", "show", "table", "all", "dev", "mgmt0"]
                    ).stdout
                )
                mgmt = [IPv4Network(r["dst"]) for r in routes if r["dst"] != "default"]
                assert mgmt, f"{node}: no route on mgmt0 ({routes})"
                assert not [(m, n) for m in mgmt for n in plan if m.overlaps(n)], node

        for tunnel in lab.lab.tunnels.values():
            ((p_host, p_addr),) = hosts_behind(lab.lab, tunnel.provider)[:1]
            ((c_host, c_addr),) = hosts_behind(lab.lab, tunnel.customer)[:1]
            assert ping(lab, c_host, p_addr).received == 5
            assert ping(lab, p_host, c_addr).received == 5
