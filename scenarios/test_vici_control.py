"""Tunnels are driven through vici: terminate a CHILD_SA, see the event, initiate it again.

Runbook: bring up the Tray static IKEv2 lab; on the customer gateway terminate tunnel1's
CHILD_SA and watch the child-updown event; initiate it again and watch it come back up;
the lab converges again and traffic flows.
"""

from __future__ import annotations

import pytest

from lab.core.waits import wait_until
from lab.observe.convergence import convergence_problems, tunnel_problems
from lab.ops.traffic import ping


@pytest.mark.parametrize("lab", ["tray-static-ikev2.yaml"], indirect=True)
def test_terminate_and_initiate_child_sa(lab):
    cgw = lab.charon("cgw")
    with cgw.watch(["child-updown"]) as events:
        cgw.terminate(child="tunnel1")
        kind, body = events.get(timeout=5)
    assert kind == "child-updown"
    assert "up" not in body, "a child-updown event without 'up' reports a CHILD_SA going down"
    ike = body["tunnel1"]
    assert [c["name"] for c in ike["child-sas"].values()] == ["tunnel1"]

    problems = tunnel_problems(lab)
    assert any(p.tunnel == "tunnel1" and "CHILD_SA" in p.text for p in problems), problems

    cgw.initiate(child="tunnel1")
    wait_until(
        lambda: convergence_problems(lab), lambda p: not p, timeout=10, what="tunnel1 to come back"
    )
    assert ping(lab, "pc", "10.10.0.100").received == 5
