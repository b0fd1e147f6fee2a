"""nftables tables of vpnlab's own inside a node: built from chains, added in one
transaction, deleted by name, found by prefix.

Faults, the IKE hold during a charon restart and the traffic counters each add a table of
their own, so removing one never touches the node's base rules or another's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lab.runtime.base import Runtime

FAULT_PREFIX = "vpnlab_fault_"


@dataclass(frozen=True)
class Chain:
    """A base chain: where it hooks in, at which priority, and its rules."""

    hook: str  # prerouting, input, forward, output, postrouting
    priority: int | str  # a number, or a name such as "raw"
    rules: Sequence[str]

    def lines(self, name: str) -> list[str]:
        return [
            f"  chain {name} {{",
            f"    type filter hook {self.hook} priority {self.priority}; policy accept;",
            *(f"    {rule}" for rule in self.rules),
            "  }",
        ]


def script(
    table: str,
    chains: Mapping[str, Chain],
    *,
    family: str = "inet",
    counters: Sequence[str] = (),
) -> str:
    """The nft script that creates ``table`` with named counters and chains."""
    body = [f"  counter {c} {{ }}" for c in counters]
    for name, chain in chains.items():
        body += chain.lines(name)
    return "\n".join([f"table {family} {table} {{", *body, "}"]) + "\n"


def add_table(
    runtime: Runtime,
    node: str,
    table: str,
    chains: Mapping[str, Chain],
    *,
    family: str = "inet",
    counters: Sequence[str] = (),
) -> None:
    runtime.run(
        node, ["nft", "-f", "-"], input=script(table, chains, family=family, counters=counters)
    )


def delete_table(runtime: Runtime, node: str, table: str, *, family: str = "inet") -> bool:
    """Remove the table; False if it was not there."""
    return runtime.run(node, ["nft", "delete", "table", family, table], check=False).returncode == 0


def tables(runtime: Runtime, node: str, prefix: str = "") -> list[tuple[str, str]]:
    """(family, name) of the node's tables whose name starts with ``prefix``."""
    proc = runtime.run(node, ["nft", "-j", "list", "tables"], check=False)
    try:
        objects = json.loads(proc.stdout or "{}").get("nftables", [])
    except json.JSONDecodeError:
        return []
    return [
        (o["table"]["family"], o["table"]["name"])
        for o in objects
        if "table" in o and o["table"]["name"].startswith(prefix)
    ]


def counter_values(
    runtime: Runtime, node: str, table: str, *, family: str = "ip"
) -> dict[str, int]:
    """Packets per named counter of ``table``."""
    proc = runtime.run(node, ["nft", "-j", "list", "counters", "table", family, table])
    return {
        o["counter"]["name"]: int(o["counter"]["packets"])
        for o in json.loads(proc.stdout)["nftables"]
        if "counter" in o
    }
