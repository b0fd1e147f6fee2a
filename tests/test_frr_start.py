"""The FRR start script: which daemons a node starts, from its static routes."""

from __future__ import annotations

import subprocess
from pathlib import PurePosixPath

import pytest

from lab.daemons.frr import Frr


class ScriptRuntime:
    """Keeps the shell script ``Frr.start`` runs and answers as a node with every vty
    socket already there."""

    def __init__(self) -> None:
        self.scripts: list[str] = []

    def node_dir(self, node: str) -> PurePosixPath:
        return PurePosixPath("/var/lib/vpnlab/t") / node

    def run(self, node: str, argv: list[str], check: bool = True):
        self.scripts.append(argv[-1])
        return subprocess.CompletedProcess(argv, 0, "", "")


def started(static: bool) -> tuple[str, tuple[str, ...]]:
    runtime = ScriptRuntime()
    frr = Frr(runtime, "vgw1", static=static)  # type: ignore[arg-type]
    frr.start()
    return runtime.scripts[0], frr.daemons


@pytest.mark.parametrize("static", [True, False])
def test_staticd_runs_only_where_there_are_static_routes(static: bool) -> None:
    script, daemons = started(static)
    assert ("/usr/lib/frr/staticd -d" in script) is static
    assert daemons == (("zebra", "staticd", "bgpd") if static else ("zebra", "bgpd"))
    assert "/usr/lib/frr/bgpd -d" in script


def test_rejected_lines_are_read_from_the_logs_not_a_dry_run() -> None:
    """The daemons log the lines they reject; a dry run (-C) of each file would cost a
    third of FRR's start CPU."""
    script, _ = started(static=True)
    assert "bgpd -C" not in script and "staticd -C" not in script
    classic = script[script.index("else\n") :]
    check = classic.index("grep 'on config line'")
    assert classic.index("/usr/lib/frr/staticd -d") < check
    assert "bgpd.log" in classic[:check] and "staticd.log" in classic[:check]


def test_bgpd_starts_right_after_zebra() -> None:
    """bgpd's one-second start timer is the bring-up's floor: it runs from bgpd's start,
    so staticd comes after it (FRR 8; FRR 10's mgmtd wants its routes before bgpd)."""
    script, _ = started(static=True)
    classic = script[script.index("else\n") :]
    at = {d: classic.index(f"/usr/lib/frr/{d} -d") for d in ("zebra", "bgpd", "staticd")}
    assert at["zebra"] < at["bgpd"] < at["staticd"]
