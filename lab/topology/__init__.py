"""Load a topology file into a resolved Lab, or fail with one TopologyError."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from lab.core.errors import InputError, TopologyError
from lab.topology.choices import AUTO, DATAPLANES
from lab.topology.model import Lab
from lab.topology.resolve import resolve
from lab.topology.schema import LAB_NAME, PATTERN_RULES, Topology
from lab.topology.yamlfile import load_yaml, read_text, validate

# Stands in for every topology's dataplane: (as 'vpnlab up --dataplane' does for one lab):
# how the scenario suite runs each lab on the data plane it is testing.
DATAPLANE_ENV = "VPNLAB_DATAPLANE"

__all__ = ["DATAPLANE_ENV", "Lab", "Topology", "json_schema", "load_lab", "parse_topology"]


def parse_topology(text: str, file: str = "<topology>") -> Topology:
    try:
        data = load_yaml(
            text, file, "topology is a YAML mapping (name:, segments:, sites:, tunnels:)"
        )
        return validate(Topology, data, file, PATTERN_RULES)
    except InputError as exc:
        raise TopologyError(exc.field, exc.rule, exc.file) from None


def load_lab(path: str | Path, name: str | None = None) -> Lab:
    """Read, validate and resolve a topology file; ``name`` overrides the lab name."""
    path = Path(path)
    try:
        text = read_text(path, "topology")
    except InputError as exc:
        raise TopologyError(exc.field, exc.rule, exc.file) from None
    topo = parse_topology(text, str(path))
    try:
        lab = resolve(topo, source=str(path.resolve()))
    except TopologyError as exc:
        raise exc.in_file(path) from None
    if name:
        if not re.match(LAB_NAME, name):
            raise TopologyError("--name", PATTERN_RULES[LAB_NAME], path)
        lab = lab.renamed(name)
    asked = os.environ.get(DATAPLANE_ENV) or None
    if asked not in (None, AUTO, *DATAPLANES):
        raise TopologyError(
            DATAPLANE_ENV, f"{asked!r} is not one of {', '.join((AUTO, *DATAPLANES))}"
        )
    return lab.asking(asked)


def json_schema() -> str:
    return json.dumps(Topology.model_json_schema(), indent=2)
