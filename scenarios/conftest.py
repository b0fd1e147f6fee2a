"""Scenario suite: real charon, FRR and nftables in network namespaces (root only)."""

from __future__ import annotations

import json
import os
import re
import subprocess

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


def host_namespace_snapshot() -> dict:
    """What vpnlab must never change in the host's own namespace."""
    links = {
        (
            link["ifname"],
            tuple(sorted(f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", []))),
        )
        for link in _json(["ip", "-j", "addr", "show"])
    }
    routes = {
        (r.get("dst"), r.get("gateway"), r.get("dev"), r.get("table"))
        for r in _json(["ip", "-j", "route", "show", "table", "all"])
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
    return {
        "links": sorted(links),
        "routes": sorted(map(str, routes)),
        "rules": rules,
        "nftables": nft,
        "sysctls": sysctls,
    }


def pytest_collection_modifyitems(config, items) -> None:
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="scenarios drive real daemons in namespaces: run as root")
        for item in items:
            if "scenarios" in str(item.path):
                item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def host_namespace_untouched():
    """The host's addresses, routes, rules, nftables and forwarding are identical afterwards."""
    before = host_namespace_snapshot()
    yield
    # Docker reports a removed container gone at once, but its network namespace (and
    # with it the host end of its veths) goes only when libnetwork's garbage collector
    # runs (every 60 s) and the kernel has freed it: seen here ~2.5 min, and once (CI,
    # 2026-11-22) over 4 min, clean a few minutes later. Poll, then judge.
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
        pytest.fail(f"the scenario suite changed the host namespace: {exc}")


def _difference(before: dict, now: dict) -> str:
    """What differs, item by item, so that a failure names the leftover."""
    lines = []
    for key in before:
        if before[key] == now[key]:
            continue
        if isinstance(before[key], list) and all(
            isinstance(x, (str, tuple)) for x in before[key] + now[key]
        ):
            lines += [f"{key}: gone {x}" for x in before[key] if x not in now[key]]
            lines += [f"{key}: new {x}" for x in now[key] if x not in before[key]]
        else:
            lines.append(f"{key}: changed")
    return "\n".join(lines)
