"""Topology variants for the unit tests, derived from the shipped tray BGP topology.

A variant is the valid topology as a dict with a few edits applied; it is dumped back to
YAML and written to a file, so every test goes through ``load_lab`` like a user would.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
TOPOLOGIES = REPO / "topologies"
TRAY_BGP = TOPOLOGIES / "tray-bgp-ikev2.yaml"
DEMO_PSK = "vpnlab-demo-key"

Edit = Callable[[dict], None]


@cache
def _base() -> dict:
    return yaml.safe_load(TRAY_BGP.read_text())


def base() -> dict:
    """A fresh copy of the valid tray BGP topology."""
    return copy.deepcopy(_base())


def _parent(data: dict, path: str) -> tuple[dict, str]:
    *parents, last = path.split(".")
    for key in parents:
        data = data[key]
    return data, last


def put(path: str, value: Any) -> Edit:
    """Set ``a.b.c`` (creating nothing on the way: a typo in a test fails loudly)."""

    def edit(data: dict) -> None:
        parent, key = _parent(data, path)
        parent[key] = value

    return edit


def drop(path: str) -> Edit:
    def edit(data: dict) -> None:
        parent, key = _parent(data, path)
        del parent[key]

    return edit


def variant(*edits: Edit) -> dict:
    data = base()
    for edit in edits:
        edit(data)
    return data


def dump(data: dict) -> str:
    return yaml.safe_dump(data, sort_keys=False)


def mutated(*edits: Edit) -> str:
    """YAML text of the tray BGP topology with ``edits`` applied."""
    return dump(variant(*edits))


def write(directory: Path, name: str, content: dict | str | bytes) -> Path:
    path = directory / f"{name}.yaml"
    if isinstance(content, dict):
        content = dump(content)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path
