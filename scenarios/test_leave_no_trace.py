"""A harness killed with SIGKILL in the middle of `vpnlab up` leaves nothing that
`vpnlab destroy --all` does not remove: namespaces, veths, daemons, state."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lab.core.errors import WaitTimeout
from lab.core.waits import wait_until
from lab.runtime.netns import lab_namespaces
from lab.session import state
from lab.session.cleanup import leftovers, stray_daemons
from lab.testing.plugin import lab_name, topology_path

pytestmark = (
    pytest.mark.every_runtime
)  # what a runtime leaves behind differs (namespaces, containers, networks)

TOPOLOGY = topology_path("tray-bgp-ikev2.yaml")
REPO = Path(__file__).resolve().parent.parent
LATE = ("load configs", "wait for convergence")


def _vpnlab(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "lab.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kw,
    )


def _phase(name: str) -> str | None:
    try:
        return state.read(name).phase
    except Exception:  # not written yet, or being written
        return None


@pytest.mark.alone
def test_sigkill_during_up_then_destroy_all_leaves_nothing(lab_runtime):
    name = lab_name(TOPOLOGY, "-kill")
    harness = _vpnlab(
        "up", str(TOPOLOGY), "--name", name, "--runtime", lab_runtime, start_new_session=True
    )
    try:
        # Kill it once its daemons run (it is loading their configs) and before it finishes.
        wait_until(
            lambda: _phase(name) in LATE or harness.poll() is not None,
            bool,
            timeout=60,
            interval=0.02,
            what="the lab's daemons to start",
        )
    except WaitTimeout:
        harness.kill()
        raise
    assert harness.poll() is None, f"vpnlab up ended by itself: {harness.stdout.read()}"
    os.killpg(harness.pid, signal.SIGKILL)
    harness.wait()
    assert leftovers(name), "the kill came too late to test anything"

    destroy = subprocess.run(
        [sys.executable, "-m", "lab.cli", "destroy", "--all"], capture_output=True, text=True
    )
    assert destroy.returncode == 0, destroy.stdout + destroy.stderr

    assert leftovers(name) == []
    assert lab_namespaces() == []
    assert stray_daemons() == []
    # veths lived only inside the lab's namespaces; none may appear in the host's.
    host_links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert "ipsec0" not in host_links and " p1@" not in host_links


def test_down_removes_everything_of_one_lab(lab_runtime):
    name = lab_name(TOPOLOGY, "-down")
    up = _vpnlab("up", str(TOPOLOGY), "--name", name, "--runtime", lab_runtime)
    out, _ = up.communicate(timeout=90)
    assert up.returncode == 0, out
    assert "converged" in out and f"on the {lab_runtime} runtime" in out
    down = subprocess.run(
        [sys.executable, "-m", "lab.cli", "down", name], capture_output=True, text=True
    )
    assert down.returncode == 0, down.stderr
    assert leftovers(name) == []
    assert not [p for p in stray_daemons() if name in _cmdline(p)]


def _cmdline(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
    except OSError:
        return ""


@pytest.mark.alone
def test_pytest_killed_mid_scenario_then_destroy_all_and_the_next_run_is_clean(lab_runtime):
    """A CI job cancelled mid-scenario: the killed pytest's lab stays until `destroy --all`,
    which removes it; the next run of the same scenario then starts from a clean machine."""
    scenario = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--runtimes",
        lab_runtime, "scenarios/test_bringup.py::test_converges",
        "-k", "tray-bgp-ikev2", "--dataplane", "userspace",
    ]  # fmt: skip
    env = {**os.environ, "VPNLAB_HOST_GUARD": "later"}  # this test judges the host
    env.pop("VPNLAB_HOST_BASELINE", None)
    killed = subprocess.Popen(scenario, env=env, cwd=REPO, start_new_session=True, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    name = f"t{killed.pid % 10000}-{TOPOLOGY.stem}"[:24]  # lab_name(), as that pytest names it
    try:
        wait_until(
            lambda: _phase(name) in LATE or killed.poll() is not None,
            bool,
            timeout=90,
            interval=0.02,
            what=f"the scenario's lab {name} to start its daemons",
        )
    finally:
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait()
    assert leftovers(name), f"the kill came too late: {killed.stdout.read()}"

    destroy = subprocess.run(
        [sys.executable, "-m", "lab.cli", "destroy", "--all"], capture_output=True, text=True
    )
    assert destroy.returncode == 0, destroy.stdout + destroy.stderr
    assert leftovers(name) == [] and lab_namespaces() == [] and stray_daemons() == []

    again = subprocess.run(scenario, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout[-3000:]
    assert "1 passed" in again.stdout
