"""A harness killed with SIGKILL in the middle of `vpnlab up` leaves nothing that
`vpnlab destroy --all` does not remove: namespaces, veths, daemons, state."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from lab import state
from lab.cleanup import stray_daemons
from lab.errors import WaitTimeout
from lab.pytest_plugin import lab_name, topology_path
from lab.runtime.netns import lab_namespaces, namespace_pids
from lab.waits import wait_until

TOPOLOGY = topology_path("tray-bgp-ikev2.yaml")


def _vpnlab(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lab.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kw)


def _daemons_in(name: str) -> list[int]:
    return [pid for ns in lab_namespaces(name) for pid in namespace_pids(ns)]


def test_sigkill_during_up_then_destroy_all_leaves_nothing():
    name = lab_name(TOPOLOGY, "-kill")
    harness = _vpnlab("up", str(TOPOLOGY), "--name", name, start_new_session=True)
    try:
        # Kill it once daemons are running but before it could finish.
        wait_until(lambda: _daemons_in(name) or harness.poll() is not None, bool, timeout=20,
                   interval=0.02, what="daemons of the lab being brought up")
    except WaitTimeout:
        harness.kill()
        raise
    assert harness.poll() is None, f"vpnlab up ended by itself: {harness.stdout.read()}"
    os.killpg(harness.pid, signal.SIGKILL)
    harness.wait()
    assert lab_namespaces(name), "the kill came too late to test anything"

    destroy = subprocess.run([sys.executable, "-m", "lab.cli", "destroy", "--all"],
                             capture_output=True, text=True)
    assert destroy.returncode == 0, destroy.stdout + destroy.stderr

    assert lab_namespaces() == []
    assert stray_daemons() == []
    assert name not in state.names()
    # veths lived only inside the lab's namespaces; none may appear in the host's.
    host_links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert "ipsec0" not in host_links and " p1@" not in host_links


def test_down_removes_everything_of_one_lab():
    name = lab_name(TOPOLOGY, "-down")
    up = _vpnlab("up", str(TOPOLOGY), "--name", name)
    out, _ = up.communicate(timeout=60)
    assert up.returncode == 0, out
    assert "converged" in out
    down = subprocess.run([sys.executable, "-m", "lab.cli", "down", name], capture_output=True,
                          text=True)
    assert down.returncode == 0, down.stderr
    assert lab_namespaces(name) == []
    assert name not in state.names()
    assert not [p for p in stray_daemons() if name in _cmdline(p)]


def _cmdline(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
    except OSError:
        return ""
