"""Load a topology file into a resolved Lab, or fail with one TopologyError."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from pydantic import ValidationError

from lab.core.errors import TopologyError
from lab.topology.model import Lab
from lab.topology.resolve import resolve
from lab.topology.schema import LAB_NAME, PATTERN_RULES, Topology

__all__ = ["Lab", "Topology", "json_schema", "load_lab", "parse_topology"]


def _check_unique_keys(
    node: yaml.Node, path: tuple[str, ...] = (), seen_nodes: set[int] | None = None
) -> None:
    """Refuse a key given twice in one mapping (YAML would silently keep the last).

    Works on the composed node tree, before construction, so the error can name the
    full dotted path of the duplicate (``segments.vpc``), not just the key.
    """
    seen_nodes = set() if seen_nodes is None else seen_nodes
    if id(node) in seen_nodes:  # an alias: already checked (and may be recursive)
        return
    seen_nodes.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else None
            line = key_node.start_mark.line + 1
            if key is not None and key in first:
                raise TopologyError(
                    ".".join((*path, key)),
                    f"duplicate key {key!r} (line {line}; first given on line {first[key]})",
                )
            if key is not None:
                first[key] = line
            _check_unique_keys(value_node, (*path, key or "?"), seen_nodes)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_unique_keys(item, (*path, str(i)), seen_nodes)


def _load_yaml(text: str) -> object:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_unique_keys(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _field(loc: tuple) -> str:
    parts = [str(p) for p in loc if not str(p).startswith("function-") and str(p) != "[key]"]
    return ".".join(parts) or "(top level)"


def parse_topology(text: str, file: str = "<topology>") -> Topology:
    try:
        data = _load_yaml(text)
    except TopologyError as exc:
        raise exc.in_file(file) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        why = "; ".join(
            str(part)
            for part in (getattr(exc, "context", None), getattr(exc, "problem", None))
            if part
        )
        raise TopologyError(where, f"not valid YAML: {why or exc}", file) from None
    if not isinstance(data, dict):
        raise TopologyError(
            "(top level)", "a topology is a YAML mapping (name:, segments:, sites:, tunnels:)", file
        )
    try:
        return Topology.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        rule = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            rule = "unknown field"
        elif err["type"] == "missing":
            rule = "required field is missing"
        elif err["type"] == "string_pattern_mismatch":
            rule = PATTERN_RULES.get(err.get("ctx", {}).get("pattern"), rule)
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
    except UnicodeDecodeError as exc:
        raise TopologyError("(file)", f"not UTF-8 text (byte {exc.start})", path) from None
    topo = parse_topology(text, str(path))
    try:
        lab = resolve(topo, source=str(path.resolve()))
    except TopologyError as exc:
        raise exc.in_file(path) from None
    if name:
        if not re.match(LAB_NAME, name):
            raise TopologyError("--name", PATTERN_RULES[LAB_NAME], path)
        lab = lab.renamed(name)
    return lab


def json_schema() -> str:
    return json.dumps(Topology.model_json_schema(), indent=2)
