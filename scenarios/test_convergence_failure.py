"""A lab that cannot converge says why: the state it was stuck in and the daemons' own words.

Runbook: take the Tray BGP lab, give the customer gateway the wrong PSK for tunnel 2, bring
it up with the default 30 s timeout; expect the bring-up to stop as soon as diagnosis names
the mismatch (TunnelFailed, well before the timeout) once tunnel 1 has converged, naming
tunnel2, quoting charon's log about the failed authentication, never showing either key,
and leaving nothing behind.
"""

from __future__ import annotations

import re

import pytest
import yaml

from lab.core.errors import TunnelFailed
from lab.ops import bringup
from lab.session import state
from lab.session.cleanup import leftovers
from lab.testing.plugin import lab_name, topology_path
from lab.topology import load_lab

RIGHT, WRONG = "vpnlab-demo-key", "customer-typo-key"


def test_psk_mismatch_times_out_with_the_reason(tmp_path, lab_runtime):
    topo = yaml.safe_load(topology_path("tray-bgp-ikev2.yaml").read_text())
    topo["tunnels"]["tunnel2"]["customer"] = {"node": "cgw", "psk": WRONG}
    path = tmp_path / "psk-mismatch.yaml"
    path.write_text(yaml.safe_dump(topo))
    lab = load_lab(path, name=lab_name(path, "-psk"))

    with pytest.raises(TunnelFailed) as failure:
        bringup.up(lab, timeout=30, runtime=lab_runtime)
    message = str(failure.value)
    print(f"\n{message.splitlines()[0]}")

    # The cause is named within seconds; the verdict waits for tunnel 1 as well, which must
    # still end well inside the timeout (a loaded Docker engine takes longest).
    diagnosed, verdict = (
        float(s)
        for s in re.search(r"diagnosed after ([\d.]+)s, verdict after ([\d.]+)s", message).groups()
    )
    assert diagnosed < 10, f"the cause took {diagnosed:.1f}s to name"
    assert verdict < 20, f"the verdict took {verdict:.1f}s of the 30s timeout"
    assert "tunnel2: pre-shared key mismatch" in message
    assert "tunnel1 converged" in message.splitlines()[0]
    assert "tunnel1:" not in message, "tunnel 1 has the right key and must have come up"
    # Both gateways' own words: the initiator was refused, the responder saw a bad MAC.
    assert "charon on cgw, tunnel2" in message and "AUTHENTICATION_FAILED" in message
    assert "charon on vgw2, tunnel2" in message and "MAC mismatched" in message
    assert RIGHT not in message and WRONG not in message
    # Without keep_on_timeout the partial lab is gone.
    assert leftovers(lab.name) == []
    assert lab.name not in state.names()
