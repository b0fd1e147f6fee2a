"""Every lab keeps a timeline while it is up, whatever command is (or is not) running.

Runbook: bring the Tray BGP lab up; the timeline has each tunnel's IKE and CHILD SAs up on
both gateways and each BGP session up with its prefix count. Block tunnel 1 with the CLI
(a process that exits): the fault, the SAs going down (DPD) and the BGP session dropping
are recorded by the lab's own recorder. Clear it, probe, and the probe's summary is there.
Bring the lab down: the recorder is gone with it.
"""

from __future__ import annotations

import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest

from lab.core.waits import wait_until
from lab.observe import events
from lab.ops.failover import restore
from lab.ops.probe import Probe
from lab.session.cleanup import stray_daemons
from lab.testing.plugin import lab_name, running_lab

pytestmark = pytest.mark.every_runtime  # the recorder reads a lab's daemons through its runtime

TOPOLOGY = "tray-bgp-ikev2.yaml"


def kinds(lab, **match) -> list[events.Event]:
    return [e for e in events.read(lab.name) if all(getattr(e, k) == v for k, v in match.items())]


def vpnlab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lab.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_bringup_is_on_the_timeline(lab):
    def seen():
        return {(e.kind, e.node, e.tunnel) for e in events.read(lab.name)}

    want = {
        (kind, node, t.name)
        for t in lab.lab.tunnels.values()
        for node in (t.provider.node, t.customer.node)
        for kind in ("ike-up", "child-up")
    }
    wait_until(seen, lambda s: want <= s, timeout=10, interval=0.2, what="SAs on the timeline")
    counts = wait_until(
        lambda: {
            e.tunnel: e.data["prefixes_received"]
            for e in kinds(lab, kind="bgp", node="cgw")
            if "prefixes_received" in e.data
        },
        lambda c: len(c) == 2,
        timeout=10,
        interval=0.2,
        what="cgw's two BGP sessions and their prefix counts on the timeline",
    )
    assert counts == {"tunnel1": 1, "tunnel2": 1}
    # Each session's states as recorded: Up first and last (it is Established now). A
    # session that flapped while a loaded CI machine brought the lab up (a 3 s hold timer)
    # shows its Down between two Ups: every change is on the timeline, in order.
    sessions = {
        t: [
            e.data["state"]
            for e in kinds(lab, kind="bgp", node="cgw", tunnel=t)
            if "state" in e.data
        ]
        for t in ("tunnel1", "tunnel2")
    }
    for states in sessions.values():
        assert states[:1] == ["Up"] and states[-1:] == ["Up"], sessions
        assert all(a != b for a, b in pairwise(states)), sessions


def test_faults_and_their_effects_are_recorded_after_the_cli_exits(lab):
    proc = vpnlab("fault", "add", "block", "--lab", lab.name, "a=vgw1", "b=cgw")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    wait_until(
        lambda: kinds(lab, kind="ike-down", node="vgw1", tunnel="tunnel1"),
        bool,
        timeout=20,
        interval=0.2,
        what="vgw1's DPD to take tunnel1 down, on the timeline",
    )
    (applied,) = [e for e in kinds(lab, kind="fault") if e.data.get("applied")]
    down = kinds(lab, kind="ike-down", node="vgw1", tunnel="tunnel1")[0]
    assert 0 < down.mono - applied.mono < 12  # DPD: 2 s + retransmits 4.75 s (+ load)
    restore(lab)
    assert [e for e in kinds(lab, kind="fault") if e.data.get("applied") is False]


def test_a_probe_writes_its_summary(lab):
    with Probe(lab, "app", "172.16.1.100", 1.0) as probe:
        probe.finish()
    (summary,) = kinds(lab, kind="probe")
    assert "app -> 172.16.1.100" in summary.text


def test_events_cli_prints_the_timeline(lab):
    proc = vpnlab("events", "--lab", lab.name)
    assert proc.returncode == 0
    assert "ike-up" in proc.stdout and "fault" in proc.stdout and "bgp" in proc.stdout
    raw = vpnlab("events", "--lab", lab.name, "--json").stdout.splitlines()
    assert all(events.Event.model_validate_json(line) for line in raw)


def test_the_recorder_lives_and_ends_with_its_lab(lab_runtime):
    with running_lab(
        "thredd-static.yaml", name=lab_name(Path("rec"), "-r"), runtime=lab_runtime
    ) as r:
        pid = r.state.recorder
        assert pid and Path(f"/proc/{pid}").exists()
    assert not Path(f"/proc/{pid}").exists()
    assert not [p for p in stray_daemons() if p == pid]
