"""The exported JSON Schema, and every shipped topology passes validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from topo_util import TOPOLOGIES

from lab.topology import json_schema, load_lab
from lab.topology.schema import NAME


def test_json_schema_is_json_with_top_level_properties() -> None:
    schema = json.loads(json_schema())
    assert schema["type"] == "object"
    assert {"name", "segments", "sites", "tunnels"} <= set(schema["properties"])
    assert {"name", "segments", "sites"} <= set(schema["required"])
    # Editors can check names too: the name rules are part of the schema.
    assert NAME in schema["properties"]["segments"]["patternProperties"]
    assert schema["additionalProperties"] is False


SHIPPED = sorted(TOPOLOGIES.glob("*.yaml"))


def test_topologies_are_shipped() -> None:
    assert SHIPPED


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_topology_loads(path: Path) -> None:
    lab = load_lab(path)
    assert lab.tunnels
    assert lab.source == str(path.resolve())
