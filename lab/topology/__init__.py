"""Load a topology file into a resolved Lab, or fail with one TopologyError."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from pydantic import ValidationError

from lab.errors import TopologyError
from lab.topology.model import Lab
from lab.topology.resolve import resolve
from lab.topology.schema import LAB_NAME, Topology

__all__ = ["Lab", "Topology", "json_schema", "load_lab", "parse_topology"]


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (YAML would keep the last)."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False):
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise TopologyError(
                str(key),
                f"duplicate name {key!r} (line {key_node.start_mark.line + 1})",
            )
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                 _construct_mapping)


def _field(loc: tuple) -> str:
    return ".".join(str(p) for p in loc if not str(p).startswith("function-")) or "(top level)"


def parse_topology(text: str, file: str = "<topology>") -> Topology:
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except TopologyError as exc:
        raise exc.in_file(file) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        raise TopologyError(where, f"not valid YAML: {getattr(exc, 'problem', exc)}", file) \
            from None
    if not isinstance(data, dict):
        raise TopologyError("(top level)", "a topology is a YAML mapping (name:, segments:, "
                            "sites:, tunnels:)", file)
    try:
        return Topology.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        rule = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            rule = "unknown field"
        elif err["type"] == "missing":
            rule = "required field is missing"
        more = len(exc.errors()) - 1
        if more:
            rule += f" (and {more} more problem{'s' if more > 1 else ''})"
        raise TopologyError(_field(err["loc"]), rule, file) from None


def load_lab(path: str | Path, name: str | None = None) -> Lab:
    """Read, validate and resolve a topology file; ``name`` overrides the lab name."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise TopologyError("(file)", f"cannot read topology: {exc.strerror}", path) from None
    topo = parse_topology(text, str(path))
    try:
        lab = resolve(topo, source=str(path.resolve()))
    except TopologyError as exc:
        raise exc.in_file(path) from None
    if name:
        if not re.match(LAB_NAME, name):
            raise TopologyError("--name", "lab names are lowercase letters, digits and '-', "
                                "start with a letter, at most 24 characters", path)
        lab = lab.renamed(name)
    return lab


def json_schema() -> str:
    return json.dumps(Topology.model_json_schema(), indent=2)
