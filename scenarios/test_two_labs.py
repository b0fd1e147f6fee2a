"""Two copies of the same lab run side by side without touching each other.

Runbook: bring up the Tray BGP lab twice under different names (same addresses inside),
check both converged and carry traffic, take one down, check the other is unaffected.
"""

from __future__ import annotations

from lab.checks import convergence_problems
from lab.pytest_plugin import lab_name, running_lab, topology_path
from lab.runtime.netns import lab_namespaces
from lab.traffic import ping

TOPOLOGY = topology_path("tray-bgp-ikev2.yaml")


def test_two_labs_at_once():
    with running_lab(TOPOLOGY, name=lab_name(TOPOLOGY, "-a")) as a:
        with running_lab(TOPOLOGY, name=lab_name(TOPOLOGY, "-b")) as b:
            assert a.name != b.name
            for running in (a, b):
                assert convergence_problems(running) == []
                assert ping(running, "pc", "10.10.0.100").received == 5
            b_nodes = lab_namespaces(b.name)
        # b is down: its namespaces are gone, a still converged and passing traffic.
        assert b_nodes and not lab_namespaces(b.name)
        assert convergence_problems(a) == []
        assert ping(a, "app", "172.16.1.100").received == 5
