"""User-written YAML files (topologies, profiles, forms) read into pydantic models, with
one error per file that names the file, the field and the rule."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from lab.core.errors import InputError

M = TypeVar("M", bound=BaseModel)


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
                raise InputError(
                    ".".join((*path, key)),
                    f"duplicate key {key!r} (line {line}; first given on line {first[key]})",
                )
            if key is not None:
                first[key] = line
            _check_unique_keys(value_node, (*path, key or "?"), seen_nodes)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_unique_keys(item, (*path, str(i)), seen_nodes)


def load_yaml(text: str, file: str, what: str) -> dict:
    """A YAML mapping from ``text``; ``what`` says what the mapping should hold."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_unique_keys(node)
        data = loader.construct_document(node) if node is not None else None
    except InputError as exc:
        raise exc.in_file(file) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        why = "; ".join(
            str(part)
            for part in (getattr(exc, "context", None), getattr(exc, "problem", None))
            if part
        )
        raise InputError(where, f"not valid YAML: {why or exc}", file) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise InputError("(top level)", f"a {what}", file)
    return data


def read_text(path: Path, what: str) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise InputError("(file)", f"cannot read {what}: {exc.strerror}", path) from None
    except UnicodeDecodeError as exc:
        raise InputError("(file)", f"not UTF-8 text (byte {exc.start})", path) from None


def field_name(loc: tuple) -> str:
    parts = [str(p) for p in loc if not str(p).startswith("function-") and str(p) != "[key]"]
    return ".".join(parts) or "(top level)"


def validation_errors(
    exc: ValidationError, pattern_rules: dict[str, str] | None = None
) -> list[tuple[str, str]]:
    """(field, rule) for every problem pydantic found, in readable words."""
    out = []
    for err in exc.errors():
        rule = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            rule = "unknown field"
        elif err["type"] == "missing":
            rule = "required field is missing"
        elif err["type"] == "string_pattern_mismatch":
            rule = (pattern_rules or {}).get(err.get("ctx", {}).get("pattern"), rule)
        out.append((field_name(err["loc"]), rule))
    return out


def validate(model: type[M], data: dict, file: str, pattern_rules: dict | None = None) -> M:
    """``data`` as ``model``, or an InputError naming the first problem (and how many more)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = validation_errors(exc, pattern_rules)
        field, rule = problems[0]
        if more := len(problems) - 1:
            rule += f" (and {more} more problem{'s' if more > 1 else ''})"
        raise InputError(field, rule, file) from None
