"""pytest fixtures that give a scenario a running lab (registered as the ``vpnlab`` plugin).

    @pytest.mark.parametrize("lab", ["tray-bgp-ikev2.yaml"], indirect=True)
    def test_x(lab): ...

``lab`` is module-scoped: one bring-up serves every test of a module that asks for the
same topology, and teardown always runs (unless --keep-lab and a test failed).

pytest loads this plugin into every run in the environment, so importing it costs little:
the engine (pyroute2, vici, the Docker SDK) is imported when a fixture first needs it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from lab.core.shipped import find_topology
from lab.testing.report import ScenarioReport
from lab.topology.timers import CONVERGE_TIMEOUT

if TYPE_CHECKING:  # for annotations only: importing the handle would load the engine
    from lab.session.handle import RunningLab


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("vpnlab")
    group.addoption(
        "--keep-lab",
        action="store_true",
        help="leave a lab up after a failing test, for inspection",
    )
    group.addoption(
        "--lab-timeout",
        type=float,
        default=CONVERGE_TIMEOUT,
        help="seconds a lab may take to converge",
    )
    group.addoption(
        "--runtimes",
        default="netns,docker",
        help="node runtimes the lab tests run on (comma-separated): the first runs every "
        "lab test, the others those marked every_runtime (docker is skipped, with the "
        "reason, when no Docker engine answers)",
    )
    group.addoption(
        "--full-matrix",
        action="store_true",
        help="run every lab test on every runtime in --runtimes, not only those marked "
        "every_runtime",
    )
    group.addoption(
        "--dataplane",
        choices=("auto", "userspace", "kernel"),
        help="run every lab on this IPsec data plane (sets VPNLAB_DATAPLANE for the "
        "run, its workers and the vpnlab commands it starts); kernel fails on a machine "
        "whose kernel has no ESP: 'bash scripts/guest.sh' gives one",
    )
    group.addoption(
        "--vpnlab-report",
        metavar="DIR",
        type=Path,
        help="write DIR/report.html: every test with its verdict, every lab with its "
        "diagram, timeline, tunnels and logs (recorded before it goes down)",
    )


_report: ScenarioReport | None = None  # set when --vpnlab-report is given


def pytest_configure(config: pytest.Config) -> None:
    global _report
    config.addinivalue_line(
        "markers",
        "kernel: proves a claim on the kernel data plane too: 'setup.sh test' runs these "
        "again with --dataplane kernel (in a stock-kernel guest where this kernel has no ESP)",
    )
    config.addinivalue_line(
        "markers",
        "every_runtime: runs on every runtime in --runtimes, not only the first: the runtime "
        "contract and what a runtime changes (bring-up, cleanup, captures, daemons, the CLI)",
    )
    plane = config.getoption("--dataplane", None)
    if plane:
        from lab.topology import DATAPLANE_ENV

        os.environ[DATAPLANE_ENV] = plane
    out_dir = config.getoption("--vpnlab-report", None)
    if out_dir is not None:
        _report = ScenarioReport(out_dir.resolve())
        config.pluginmanager.register(_report, "vpnlab-report")


def _taking_down(running: RunningLab) -> None:
    """What every lab fixture does before ``down``: record it for the report, if asked."""
    if _report is None:
        return
    try:
        _report.save(running)
    except Exception as exc:  # the lab still goes down; the report says what is missing
        warnings.warn(f"vpnlab report: lab {running.name} not recorded: {exc!r}", stacklevel=1)


def _runtimes(config: pytest.Config) -> list[str]:
    return [k.strip() for k in config.getoption("--runtimes").split(",") if k.strip()]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that uses a lab is made once per runtime: same topology, same checks."""
    if "lab_runtime" in metafunc.fixturenames:
        kinds = _runtimes(metafunc.config)
        metafunc.parametrize("lab_runtime", kinds, indirect=True, scope="module")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The first runtime runs every lab test; the others run those marked every_runtime.
    The engine above the runtime is the same code on each, so the rest would prove it
    twice. Left out as deselected (counted in the summary), or kept by --full-matrix."""
    kinds = _runtimes(config)
    if config.getoption("--full-matrix") or len(kinds) < 2:
        return
    kept, dropped = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        other = params.get("lab_runtime", kinds[0]) != kinds[0]
        (dropped if other and not item.get_closest_marker("every_runtime") else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    """Say which lab tests each runtime ran: under pytest-xdist the workers deselect, and
    the summary line counts none of it."""
    kinds = _runtimes(config)
    if len(kinds) > 1 and not config.getoption("--full-matrix"):
        terminalreporter.write_line(
            f"vpnlab: every lab test ran on {kinds[0]}; on {', '.join(kinds[1:])} only those "
            "marked every_runtime (--full-matrix runs them all everywhere)"
        )


@pytest.fixture(scope="module")
def lab_runtime(request: pytest.FixtureRequest) -> str:
    kind = getattr(request, "param", "netns")
    if kind == "docker":
        from lab.runtime.docker.engine import daemon_available

        if not daemon_available():
            pytest.skip("no Docker engine answers (bash scripts/setup.sh test starts one)")
    return kind


def topology_path(name: str) -> Path:
    """A shipped topology by file name, or a path."""
    return find_topology(name)


def lab_name(topology: Path, suffix: str = "") -> str:
    """Test labs get their own names (pid-tagged: one per pytest worker) so a test run never
    meets a user's lab, nor another worker's."""
    return f"t{os.getpid() % 10000}-{topology.stem}"[: 24 - len(suffix)] + suffix


@contextmanager
def running_lab(
    topology: str | Path,
    *,
    name: str | None = None,
    timeout: float = CONVERGE_TIMEOUT,
    keep: bool = False,
    runtime: str = "netns",
) -> Iterator[RunningLab]:
    """Bring a topology up, yield the converged lab, always take it down afterwards."""
    from lab.ops import bringup
    from lab.topology import load_lab

    path = topology_path(str(topology))
    running = bringup.up(
        load_lab(path, name=name or lab_name(path)), timeout=timeout, runtime=runtime
    )
    try:
        yield running
    finally:
        _taking_down(running)
        if not keep:
            running.down()


@pytest.fixture(scope="module")
def lab(request: pytest.FixtureRequest, lab_runtime: str) -> Iterator[RunningLab]:
    from lab.ops import bringup
    from lab.topology import load_lab

    topology = getattr(request, "param", None) or getattr(request.module, "TOPOLOGY", None)
    if topology is None:
        raise pytest.UsageError(
            "parametrize 'lab' with a topology file (indirect=True) or set TOPOLOGY in the module"
        )
    path = topology_path(str(topology))
    running = bringup.up(
        load_lab(path, name=lab_name(path)),
        timeout=request.config.getoption("--lab-timeout"),
        runtime=lab_runtime,
    )
    failed_before = request.session.testsfailed
    try:
        yield running
    finally:
        _taking_down(running)
        if request.config.getoption("--keep-lab") and request.session.testsfailed > failed_before:
            print(
                f"\n--keep-lab: lab {running.name} left up; 'vpnlab down {running.name}' removes it"
            )
        else:
            running.down()


@pytest.fixture(scope="module")
def lab_hosts(lab: RunningLab) -> dict:
    """testinfra hosts for every node of the lab, by node name."""
    from lab.testing.hosts import host

    return {node: host(lab, node) for node in lab.lab.nodes}
