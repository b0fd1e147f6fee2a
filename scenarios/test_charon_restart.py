"""A restarted charon answers IKE only once its connections are loaded.

A charon without connections answers an IKE retry with NO_PROPOSAL_CHOSEN, and a
strongSwan initiator gives up for good on that error (keyingtries covers silence only): a
customer retrying at the wrong moment would leave its tunnel down until someone initiates
it by hand. CI caught this after a killed-charon failover test. vpnlab drops IKE arriving
at the node while its charon starts and loads, so the retry comes again later.

Runbook: kill the provider charon of tunnel 1; wait until the customer has noticed (DPD)
and is retrying; restart it, holding the load back until one retry has met the restarting
node; the lab converges again and the customer never saw NO_PROPOSAL_CHOSEN.
"""

from __future__ import annotations

import json

import pytest

from lab.core.waits import wait_until
from lab.observe.convergence import convergence_problems
from lab.ops import bringup, faults

pytestmark = pytest.mark.every_runtime  # a daemon restarted through the runtime

TOPOLOGY = "tray-static-ikev2.yaml"


def _held(lab, node: str) -> int:
    """IKE packets dropped at ``node`` while its charon restarts."""
    out = lab.exec(node, ["nft", "-j", "list", "table", "inet", bringup.IKE_HOLD]).stdout
    return sum(
        o["rule"]["expr"][1]["counter"]["packets"]
        for o in json.loads(out)["nftables"]
        if "rule" in o
    )


@pytest.mark.parametrize("lab", [TOPOLOGY], indirect=True)
def test_a_retry_during_the_restart_does_not_strand_the_tunnel(lab, monkeypatch):
    load = bringup.load_charon

    def load_after_a_retry(running, node):
        wait_until(
            lambda: _held(running, node),
            lambda n: n > 0,
            timeout=20,
            what=f"a retry from the customer to reach {node} while charon restarts",
        )
        load(running, node)

    fault = faults.inject(lab, "kill", node="vgw1", daemon="charon")
    wait_until(
        lambda: lab.charon("cgw").ike_sas().get("tunnel1", {}).get("state"),
        lambda state: state == "CONNECTING",
        timeout=30,
        what="cgw to notice vgw1 is gone and retry tunnel1",
    )
    monkeypatch.setattr(bringup, "load_charon", load_after_a_retry)
    faults.clear(lab, fault.id)
    wait_until(
        lambda: convergence_problems(lab),
        lambda p: not p,
        timeout=30,
        what="tunnel1 back after the restart",
    )
    assert "NO_PROPOSAL_CHOSEN" not in lab.charon("cgw").log_tail(200)
