"""Scenario suite: real charon, FRR and nftables in network namespaces (root only)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from lab.core.errors import WaitTimeout
from lab.core.waits import wait_until

SYSCTLS = (
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.forwarding",
    "net.ipv4.conf.all.rp_filter",
    "net.ipv6.conf.all.forwarding",
    "net.ipv6.conf.all.disable_ipv6",
)


def _json(argv: list[str]) -> list:
    return json.loads(subprocess.run(argv, capture_output=True, text=True).stdout or "[]")


# The host end of a container's veth ("veth" + 7 hex digits, named by Docker): it goes when
# Docker's garbage collector frees the container's namespace, minutes after the container
# (and vpnlab's lab) is gone, and one left by an earlier run may vanish during this one.
# The containers and networks themselves are checked by the cleanup tests.
DOCKER_VETH = re.compile(r"veth[0-9a-f]{7}")


def host_namespace_snapshot() -> dict:
    """What vpnlab must never change in the host's own namespace."""
    links = {
        (
            link["ifname"],
            tuple(sorted(f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", []))),
        )
        for link in _json(["ip", "-j", "addr", "show"])
        if not DOCKER_VETH.fullmatch(link["ifname"])
    }
    routes = {
        (r.get("dst"), r.get("gateway"), r.get("dev"), r.get("table"))
        for r in _json(["ip", "-j", "route", "show", "table", "all"])
        if not DOCKER_VETH.fullmatch(r.get("dev") or "")
    }
    rules = _json(["ip", "-j", "rule", "show"])
    # Rules, not their counters: Docker's rules count every packet it forwards.
    nft = re.sub(
        r"counter packets \d+ bytes \d+",
        "counter",
        subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout,
    )
    sysctls = {
        k: subprocess.run(["sysctl", "-n", k], capture_output=True, text=True).stdout
        for k in SYSCTLS
    }
    snapshot = {
        "links": sorted(links),
        "routes": sorted(map(str, routes)),
        "rules": rules,
        "nftables": nft,
        "sysctls": sysctls,
    }
    return json.loads(json.dumps(snapshot))  # as it reads back from a baseline file


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="scenarios drive real daemons in namespaces: run as root")
        for item in items:
            if "scenarios" in str(item.path):
                item.add_marker(skip)


def pytest_itemcollected(item: pytest.Item) -> None:
    """Side by side (pytest-xdist, --dist loadgroup): the tests sharing a module-scoped lab
    (the same module, topology and runtime) stay on one worker, in their order, so that
    the lab comes up once and a test may build on the one before it. Marked as each item
    is collected, before xdist reads the groups off the items."""
    group = _shared_lab(item)
    if group:
        item.add_marker(pytest.mark.xdist_group(group))


STATELESS = {"lab_runtime"}  # module-scoped, but holds nothing a later test could see


def _shared_lab(item: pytest.Item) -> str | None:
    """A name for the module-scoped fixtures (and their parameters) ``item`` shares with
    other tests, or None when it shares none."""
    defs = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
    scoped = {name for name, d in defs.items() if d and d[-1].scope != "function"}
    if not scoped - STATELESS:
        return None
    params = getattr(getattr(item, "callspec", None), "params", {})
    shared = sorted(f"{k}={v}" for k, v in params.items() if k in scoped)
    return ":".join([item.module.__name__, *shared])


# The host guard runs in the controlling pytest process only: with xdist, its workers
# start after the first snapshot and are gone before the last.
_BEFORE = pytest.StashKey[dict]()
_CHANGED = pytest.StashKey[str]()


def _guards(config: pytest.Config) -> bool:
    return os.geteuid() == 0 and not hasattr(config, "workerinput")


def pytest_sessionstart(session: pytest.Session) -> None:
    if not _guards(session.config):
        return
    # VPNLAB_HOST_BASELINE=FILE: compare with the snapshot in FILE (taken and written there
    # if FILE is empty), so that several pytest runs are judged against one "before".
    baseline = os.environ.get("VPNLAB_HOST_BASELINE")
    path = Path(baseline) if baseline else None
    if path is not None and path.exists() and path.stat().st_size:
        before = json.loads(path.read_text())
    else:
        before = host_namespace_snapshot()
        if path is not None:
            path.write_text(json.dumps(before))
    session.config.stash[_BEFORE] = before


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The host's addresses, routes, rules, nftables and forwarding are identical afterwards."""
    # VPNLAB_HOST_GUARD=later: a later run with the same baseline judges the host.
    if not _guards(session.config) or os.environ.get("VPNLAB_HOST_GUARD") == "later":
        return
    before = session.config.stash[_BEFORE]
    # Poll, then judge: a removed lab's Docker networks and their rules go a moment after
    # the containers (container veths are left out of the snapshot, see DOCKER_VETH).
    try:
        wait_until(
            host_namespace_snapshot,
            lambda now: now == before,
            timeout=420,
            interval=0.5,
            what="the host namespace to be as before the suite",
            explain=lambda now: _difference(before, now),
        )
    except WaitTimeout as exc:
        session.config.stash[_CHANGED] = str(exc)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    if _CHANGED in config.stash:
        terminalreporter.section("host namespace guard", red=True, bold=True)
        terminalreporter.line(
            "FAILED: the scenario suite changed the host namespace: " + config.stash[_CHANGED],
            red=True,
        )


def _difference(before: dict, now: dict) -> str:
    """What differs, item by item, so that a failure names the leftover."""
    lines = []
    for key in before:
        if before[key] == now[key]:
            continue
        if isinstance(before[key], list) and all(
            isinstance(x, (str, list)) for x in before[key] + now[key]
        ):
            lines += [f"{key}: gone {x}" for x in before[key] if x not in now[key]]
            lines += [f"{key}: new {x}" for x in now[key] if x not in before[key]]
        else:
            lines.append(f"{key}: changed")
    return "\n".join(lines)
