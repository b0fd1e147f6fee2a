"""A data plane can be asked for instead of detected: userspace on every gateway (what this
project's CI machines run, so a laptop with kernel ESP can reproduce them), or the kernel's
ESP, which a gateway whose kernel lacks it refuses by name, leaving nothing behind.

Runbook: bring up the static IKEv2 lab asking for userspace; every gateway runs it and the
hosts reach each other through the tunnel. Then ask for kernel: where the gateways' kernels
have ESP the lab converges on it; where they have not, the bring-up stops naming a gateway.
"""

from __future__ import annotations

import pytest

from lab.core.errors import LabError
from lab.daemons import dataplane
from lab.observe.status import collect
from lab.ops import bringup
from lab.ops.traffic import ping
from lab.session.cleanup import leftovers
from lab.testing.plugin import lab_name, topology_path
from lab.topology import load_lab

# Proven on the kernel data plane too, and on every runtime (each detects its own).
pytestmark = [pytest.mark.kernel, pytest.mark.every_runtime]

PATH = topology_path("tray-static-ikev2.yaml")


def _asking(plane: str):
    return load_lab(PATH, name=lab_name(PATH, f"-{plane[:4]}")).asking(plane)


def test_userspace_asked_for_then_kernel(lab_runtime):
    running = bringup.up(_asking("userspace"), runtime=lab_runtime)
    try:
        status = collect(running)
        assert status.dataplane_asked == "userspace"
        assert set(status.dataplane.values()) == {dataplane.USERSPACE}
        assert ping(running, "pc", "10.10.0.100").received == 5
        offered = dataplane.detect(running.runtime, "cgw")
    finally:
        running.down()

    lab = _asking("kernel")
    try:
        running = bringup.up(lab, runtime=lab_runtime)
    except LabError as exc:
        assert offered == dataplane.USERSPACE, f"the kernel offers ESP, yet: {exc}"
        assert "data plane 'kernel' asked for, but the node's kernel has no ESP" in str(exc)
    else:
        try:
            assert offered == dataplane.KERNEL
            assert set(collect(running).dataplane.values()) == {dataplane.KERNEL}
        finally:
            running.down()
    assert leftovers(lab.name) == []
