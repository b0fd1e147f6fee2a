"""Two copies of the same lab run side by side without touching each other.

Runbook: bring up the Tray BGP lab twice under different names (same addresses inside),
check both converged and carry traffic, take one down, check the other is unaffected.
"""

from __future__ import annotations

import pytest

from lab.observe.convergence import convergence_problems
from lab.ops.traffic import ping
from lab.session.cleanup import leftovers
from lab.testing.plugin import lab_name, running_lab, topology_path

# Two labs' names, networks and sockets stay apart on each runtime.
pytestmark = pytest.mark.every_runtime

TOPOLOGY = topology_path("tray-bgp-ikev2.yaml")


def _nodes_of(running) -> list[str]:
    return leftovers(running.name)


def test_two_labs_at_once(lab_runtime):
    with running_lab(TOPOLOGY, name=lab_name(TOPOLOGY, "-a"), runtime=lab_runtime) as a:
        with running_lab(TOPOLOGY, name=lab_name(TOPOLOGY, "-b"), runtime=lab_runtime) as b:
            assert a.name != b.name
            for running in (a, b):
                assert convergence_problems(running) == []
                assert ping(running, "pc", "10.10.0.100").received == 5
            b_nodes = _nodes_of(b)
        # b is down: its nodes are gone, a still converged and passing traffic.
        assert b_nodes and not _nodes_of(b)
        assert convergence_problems(a) == []
        assert ping(a, "app", "172.16.1.100").received == 5
