"""Everyday support cases: a customer's mistake is named in one line, from the daemons' words.

Runbook: take the Tray static IKEv2 lab, seed one mistake on tunnel2's customer side, bring it
up with a short timeout and keep it; expect exactly one diagnosis, for tunnel2, naming the
cause (in ``diagnose()``, in the convergence-timeout report and in ``vpnlab status``), none for
tunnel1, and neither key anywhere. DPD off on one side converges: it is a warning.

Selectors and the peer address are one value shared by both sides in a topology file, so
those two mistakes are made the way a customer makes them: only the customer gateway's
charon gets the wrong value (its loaded connection is edited), the provider keeps the right one.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
import yaml
from click.testing import CliRunner

from lab.cli import main
from lab.core.errors import ConvergenceFailed
from lab.observe.diagnose import diagnose
from lab.ops import bringup
from lab.session.cleanup import leftovers
from lab.testing.plugin import topology_path
from lab.topology import load_lab

RIGHT, WRONG = "vpnlab-demo-key", "customer-typo-key"
TIMEOUT = 7  # every failure shows within ~2 s (the first IKE retransmit), so 7 s is ample


def _customer_charon(change: Callable[[dict], None]) -> Callable:
    """Wrap the connection builder so only cgw's tunnel2 gets ``change``."""
    build = bringup.connections

    def connections(lab, node: str) -> dict[str, dict]:
        conns = build(lab, node)
        if node == "cgw":
            change(conns["tunnel2"])
        return conns

    return connections


def _remote_ts(conn: dict) -> None:
    for child in conn["children"].values():
        child["remote_ts"] = ["10.20.0.0/24"]  # a typo for the VPC's 10.10.0.0/24


def _remote_addrs(conn: dict) -> None:
    conn["remote_addrs"] = ["198.51.100.99"]  # nothing answers there


# cause -> (lab name suffix, tunnel2 customer-side settings, edit of cgw's loaded connection)
MISTAKES: dict[str, tuple[str, dict, Callable[[dict], None] | None]] = {
    "ike-proposal-mismatch": ("ike", {"ike_proposals": ["aes128-sha1-modp1024"]}, None),
    "esp-proposal-mismatch": ("esp", {"esp_proposals": ["aes128-sha1-modp1024"]}, None),
    "psk-mismatch": ("psk", {"psk": WRONG}, None),
    "traffic-selector-mismatch": ("ts", {}, _remote_ts),
    "wrong-peer-address": ("peer", {}, _remote_addrs),
    "ike-version-mismatch": ("ver", {"ike": 1}, None),
    "dpd-off-one-side": ("dpd", {"dpd": {"delay": 0}}, None),
}
EXPECTED = {
    "ike-proposal-mismatch": "tunnel2: IKE proposal mismatch: customer cgw offers "
    "aes128-sha1-modp1024, provider vgw2 accepts aes256-sha256-modp2048",
    "esp-proposal-mismatch": "tunnel2: ESP proposal mismatch: customer cgw offers aes128-sha1, "
    "provider vgw2 accepts aes256-sha256-modp2048",
    "psk-mismatch": "tunnel2: pre-shared key mismatch: provider vgw2 rejects customer cgw's",
    "traffic-selector-mismatch": "tunnel2: traffic selector mismatch: customer cgw proposes "
    "172.16.1.0/24 === 10.20.0.0/24, provider vgw2 accepts "
    "172.16.1.0/24 === 10.10.0.0/24",
    "wrong-peer-address": "tunnel2: wrong peer address: customer cgw sends IKE to 198.51.100.99, "
    "which never answers; provider vgw2 is at 198.51.100.12",
    "ike-version-mismatch": "tunnel2: IKE version mismatch: customer cgw sends IKEv1 (Main Mode),"
    " provider vgw2 is configured for IKEv2 only",
    "dpd-off-one-side": "tunnel2: DPD off on one side: customer cgw has dpd_delay 0 (off), "
    "provider vgw2 probes every 2s",
}


@pytest.mark.parametrize("cause", list(MISTAKES))
def test_customer_mistake_is_named(cause: str, tmp_path, monkeypatch, lab_runtime) -> None:
    suffix, settings, edit = MISTAKES[cause]
    topo = yaml.safe_load(topology_path("tray-static-ikev2.yaml").read_text())
    topo["tunnels"]["tunnel2"]["customer"] = {"node": "cgw", **settings}
    path = tmp_path / f"{suffix}.yaml"
    path.write_text(yaml.safe_dump(topo))
    lab = load_lab(path, name=f"h2-{os.getpid() % 10000}-{suffix}")
    if edit:
        monkeypatch.setattr(bringup, "connections", _customer_charon(edit))

    report = None
    try:
        running = bringup.up(lab, timeout=TIMEOUT, keep_on_timeout=True, runtime=lab_runtime)
    except ConvergenceFailed as exc:
        report = str(exc)
        running = bringup.RunningLab.attach(lab.name)
    try:
        found = diagnose(running)
        status = CliRunner().invoke(main, ["status", "--lab", lab.name])
    finally:
        running.down()
    assert leftovers(lab.name) == []

    assert [(d.tunnel, d.cause) for d in found] == [("tunnel2", cause)], found
    (d,) = found
    assert d.message.startswith(EXPECTED[cause]), d.message
    assert "\n" not in d.message and d.evidence
    assert status.exit_code == 0, status.output
    assert d.message in status.output.splitlines()
    if cause == "dpd-off-one-side":
        assert report is None, "DPD off on one side must not stop convergence"
        assert d.severity == "warning"
    else:
        assert report is not None and report.splitlines()[1] == f"  cause: {d.message}", report
    for text in (d.message, *d.evidence, status.output, report or ""):
        assert RIGHT not in text and WRONG not in text
