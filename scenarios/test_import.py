"""A customer's tunnel reproduced from the files in the ticket, on real daemons.

Runbook, per shipped sample (one bring-up each): `vpnlab import` it (AWS XML with BGP, AWS
Generic text, a customer's swanctl.conf against that AWS file, a customer's ipsec.conf with
its ipsec.secrets against the aws profile), bring the topology up, expect it converged,
pings both ways between the customer's LAN host and the VPC host with the SA counters
moving, then tunnel 1 blocked between the gateways and the outage within the bound the
imported timers give (AWS's BGP hold time for the BGP sample), traffic on tunnel 2. A
customer swanctl.conf whose IKE proposal AWS does not accept (DH group 5) is diagnosed as
an "IKE proposal mismatch" within seconds. No key in the import's output or topology.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from lab.cli import main
from lab.core.errors import ConvergenceFailed
from lab.core.paths import lab_dir
from lab.core.shipped import SAMPLES, shipped
from lab.observe.diagnose import diagnose
from lab.ops import bringup
from lab.ops.failover import measure, restore
from lab.ops.traffic import hosts_behind, packets, ping
from lab.session.cleanup import leftovers
from lab.session.handle import RunningLab
from lab.testing.artefacts import files_holding
from lab.topology import load_lab

AWS, CUSTOMER = shipped(SAMPLES) / "aws", shipped(SAMPLES) / "customer"
XML, TEXT = AWS / "vpn-0a1b2c3d4e5f60718.xml", AWS / "vpn-0c0ffee0123456789.txt"
KEYS = [
    "sampleTunnelOne.key_4vpnlab",
    "sampleTunnelTwo.key_4vpnlab",
    "staticSampleKey.one_2026",
    "staticSampleKey.two_2026",
    "ipsecConfSample.key1",
    "ipsecConfSample.key2",
]
# sample -> the `vpnlab import` arguments (the XML names no IKE version; AWS takes both)
IMPORTS = {
    "aws-xml": ["aws", str(XML), "--ike", "2"],
    "aws-text": ["aws", str(TEXT)],
    "swanctl": ["swanctl", str(CUSTOMER / "swanctl.conf"), "--aws", str(TEXT)],
    "ipsec-conf": [
        "ipsec-conf",
        str(CUSTOMER / "ipsec.conf"),
        "--secrets",
        str(CUSTOMER / "ipsec.secrets"),
    ],
}
MISMATCH = ["swanctl", str(CUSTOMER / "swanctl-modp1536.conf"), "--aws", str(TEXT)]


def imported(args: list[str], folder: Path) -> Path:
    """`vpnlab import ... -o folder/lab.yaml`; the keys only in the env file beside it."""
    out = folder / "lab.yaml"
    result = CliRunner().invoke(main, ["import", *args, "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert not any(k in result.output for k in KEYS), "a key reached the import's output"
    assert files_holding(folder, KEYS) == [folder / "lab.env"]
    return out


def name(runtime: str, sample: str) -> str:
    return f"t{os.getpid() % 10000}{runtime[0]}-{sample}"[:24]


@pytest.fixture(scope="module", params=list(IMPORTS))
def sample_lab(request, lab_runtime, tmp_path_factory) -> Iterator[RunningLab]:
    folder = tmp_path_factory.mktemp(request.param)
    lab = load_lab(imported(IMPORTS[request.param], folder), name=name(lab_runtime, request.param))
    running = bringup.up(
        lab, timeout=request.config.getoption("--lab-timeout"), runtime=lab_runtime
    )
    try:
        yield running
    finally:
        running.down()


def test_imported_lab_carries_traffic_and_fails_over(sample_lab: RunningLab):
    lab = sample_lab.lab
    t1 = lab.tunnels["tunnel1"]
    (pc, pc_ip), (vpc, vpc_ip) = (
        hosts_behind(lab, t1.customer)[0],
        hosts_behind(lab, t1.provider)[0],
    )
    before = packets(sample_lab)
    assert ping(sample_lab, pc, str(vpc_ip), 5).received == 5
    assert ping(sample_lab, vpc, str(pc_ip), 5).received == 5
    after = packets(sample_lab)
    moved = {k: (after[k][0] - before[k][0], after[k][1] - before[k][1]) for k in after}
    # Ten requests and ten replies crossed the tunnels, counted by the SAs of both ends.
    assert sum(i for (_, node), (i, _) in moved.items() if node == t1.customer.node) >= 10, moved
    assert sum(o for (_, node), (_, o) in moved.items() if node == t1.customer.node) >= 10, moved

    m = measure(sample_lab, "tunnel1", "block")
    print(f"\n{lab.name} ({lab.tunnels['tunnel1'].routing}) {m.line()}")
    try:
        assert m.result.longest is None or m.result.longest.recovered, m.line()
        assert m.bound.holds(m.result.outage), m.line()
        assert m.result.carriers_after == {"to customer": "tunnel2", "to provider": "tunnel2"}, (
            m.line()
        )
    finally:
        took = restore(sample_lab, timeout=60)
    print(f"tunnel1 re-established {took:.2f}s after the fault was cleared")
    # Daemon logs and rendered files hold no key; only the 0600 state file does, by design.
    files = [f for f in lab_dir(lab.name).rglob("*") if f.is_file() and f.name != "lab.json"]
    assert files and not [f for f in files if any(k.encode() in f.read_bytes() for k in KEYS)]


def test_customer_proposal_aws_refuses_is_diagnosed(lab_runtime, tmp_path):
    lab = load_lab(imported(MISMATCH, tmp_path), name=name(lab_runtime, "mismatch"))
    report = None
    try:
        running = bringup.up(lab, timeout=15, keep_on_timeout=True, runtime=lab_runtime)
    except ConvergenceFailed as exc:
        report = str(exc)
        running = RunningLab.attach(lab.name)
    try:
        found = diagnose(running)
    finally:
        running.down()
    assert leftovers(lab.name) == []
    assert report is not None, "a lab whose proposals AWS refuses must not converge"
    assert "IKE proposal mismatch" in report, report
    assert found and {d.cause for d in found} == {"ike-proposal-mismatch"}, found
    for d in found:
        assert "offers aes256-sha256-modp1536" in d.message, d.message
        print(d.message)
    assert not any(k in report + "".join(d.message for d in found) for k in KEYS)
