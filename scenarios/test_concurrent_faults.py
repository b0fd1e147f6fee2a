"""Faults added by several ``vpnlab`` processes at once: no record lost, no id shared.

Runbook on the Tray BGP lab (named ``race-<pid>-<runtime>``, on each runtime):

1. Three rounds; each starts THREE ``vpnlab fault add loss node=cgw interface=internet
   percent=1`` processes at once (all started before any is waited for). Every one must
   exit 0.
2. Expect: ``vpnlab fault list`` shows 9 faults with 9 distinct ids; cgw holds exactly 9
   nftables tables ``vpnlab_fault_<id>``, one per recorded id, and no other node holds
   any; the ids each command printed are those 9.
3. ``vpnlab fault clear``: every fault reported cleared, no ``vpnlab_fault_*`` table left
   in any node, ``fault list`` empty.
4. A fault table made by hand in cgw and never recorded (what a crashed command leaves):
   ``vpnlab fault clear`` removes it too, and leaves the node's other tables alone.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from lab.daemons import nftables
from lab.daemons.nftables import FAULT_PREFIX, Chain
from lab.ops import faults
from lab.session import state
from lab.session.handle import RunningLab
from lab.testing.plugin import running_lab

TOPOLOGY = "tray-bgp-ikev2.yaml"
ROUNDS, AT_ONCE = 3, 3
LOSS = ["loss", "node=cgw", "interface=internet", "percent=1"]
CLI_TIMEOUT = 180  # one `fault add` waits for the others' turns at the lab's lock


@pytest.fixture(scope="module")
def lab(request: pytest.FixtureRequest, lab_runtime: str) -> Iterator[RunningLab]:
    """The plugin's ``lab``, under a ``race-`` name of this module's own."""
    with running_lab(
        request.param,
        name=f"race-{os.getpid() % 10000}-{lab_runtime}",
        timeout=request.config.getoption("--lab-timeout"),
        runtime=lab_runtime,
    ) as running:
        yield running


def _vpnlab(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "lab.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _done(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=CLI_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"{' '.join(map(str, proc.args))} still running after {CLI_TIMEOUT}s: {err}")
    return proc.returncode, out, err


def _listed(lab: RunningLab) -> list[int]:
    code, out, err = _done(_vpnlab("fault", "list", "-l", lab.name))
    assert code == 0, err
    return [int(m[1]) for m in re.finditer(r"^(\d+)\s+\S+\s+loss\s", out, re.M)]


def _fault_tables(lab: RunningLab) -> dict[str, list[str]]:
    """Every node's vpnlab_fault_* tables, by node (nodes without any left out)."""
    found = {
        node: sorted(name for _, name in nftables.tables(lab.runtime, node, FAULT_PREFIX))
        for node in lab.lab.nodes
    }
    return {node: names for node, names in found.items() if names}


@pytest.fixture
def clean(lab: RunningLab) -> Iterator[RunningLab]:
    """Starts with no fault, and leaves none behind whatever the test did."""
    assert faults.active(lab) == [] and _fault_tables(lab) == {}
    try:
        yield lab
    finally:
        faults.clear(lab)


@pytest.mark.parametrize("lab", [TOPOLOGY], indirect=True)
def test_fault_adds_at_once_keep_every_record(clean: RunningLab) -> None:
    lab = clean
    printed: list[int] = []
    for round_ in range(ROUNDS):
        started = [_vpnlab("fault", "add", "-l", lab.name, *LOSS) for _ in range(AT_ONCE)]
        for code, out, err in map(_done, started):
            assert code == 0, f"round {round_ + 1}: fault add exited {code}: {err}"
            printed += [int(m[1]) for m in re.finditer(r"^fault (\d+): ", out, re.M)]

    total = ROUNDS * AT_ONCE
    ids = _listed(lab)
    assert len(ids) == total and len(set(ids)) == total, ids
    assert sorted(printed) == sorted(ids)
    recorded = [f.id for f in state.read(lab.name).faults]
    assert sorted(recorded) == sorted(ids)
    # The tables, read straight from the node, are the records: one each, no more.
    listed = json.loads(lab.exec("cgw", ["nft", "-j", "list", "tables"], check=True).stdout)
    in_cgw = [
        o["table"]["name"]
        for o in listed["nftables"]
        if o.get("table", {}).get("name", "").startswith(FAULT_PREFIX)
    ]
    assert len(in_cgw) == total, in_cgw
    assert _fault_tables(lab) == {"cgw": sorted(f"{FAULT_PREFIX}{i}" for i in ids)}

    code, out, err = _done(_vpnlab("fault", "clear", "-l", lab.name))
    assert code == 0, err
    cleared = [int(m[1]) for m in re.finditer(r"^cleared fault (\d+): ", out, re.M)]
    assert sorted(cleared) == sorted(ids)
    assert _fault_tables(lab) == {}
    assert _listed(lab) == [] and state.read(lab.name).faults == []


@pytest.mark.parametrize("lab", [TOPOLOGY], indirect=True)
def test_clear_removes_an_unrecorded_fault_table(clean: RunningLab) -> None:
    lab = clean
    # A table such as a crashed `fault add` leaves: in the node, not in the state.
    stray = f"{FAULT_PREFIX}99"
    rule = "ip daddr 203.0.113.99 counter drop"
    nftables.add_table(lab.runtime, "cgw", stray, {"out": Chain("output", -300, [rule])})
    others = sorted(set(nftables.tables(lab.runtime, "cgw")) - {("inet", stray)})
    assert _fault_tables(lab) == {"cgw": [stray]}
    assert faults.active(lab) == [] and _listed(lab) == []
    listing = lab.exec("cgw", ["nft", "list", "table", "inet", stray], check=True).stdout
    assert "203.0.113.99" in listing and "drop" in listing

    code, out, err = _done(_vpnlab("fault", "clear", "-l", lab.name))
    assert code == 0, err
    assert "cleared fault" not in out  # nothing recorded was there to revert
    assert _fault_tables(lab) == {}
    assert sorted(nftables.tables(lab.runtime, "cgw")) == others
