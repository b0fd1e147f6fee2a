"""Read a swanctl.conf's sections and settings (strongSwan's settings syntax: ``name {``,
``}``, ``key = value``, ``#`` comments) into nested dicts, to check what a customer's
file offers before charon loads it. ``include`` is not followed."""

from __future__ import annotations

import re

from lab.core.errors import InputError

SECTION = re.compile(r"^([\w.:-]+)\s*\{\s*$")
SETTING = re.compile(r"^([\w.:-]+)\s*=\s*(.*)$")


def parse(text: str, file: str = "swanctl.conf") -> dict:
    root: dict = {}
    stack = [root]
    for n, raw in enumerate(text.splitlines(), start=1):
        line = _uncomment(raw).strip()
        if not line:
            continue
        if m := SECTION.match(line):
            stack[-1][m[1]] = section = {}
            stack.append(section)
        elif line == "}":
            if len(stack) == 1:
                raise InputError(f"line {n}", "'}' closes no section", file)
            stack.pop()
        elif m := SETTING.match(line):
            stack[-1][m[1]] = m[2].strip().strip('"')
        elif not line.startswith("include "):
            raise InputError(f"line {n}", "neither 'name {', '}' nor 'key = value'", file)
    if len(stack) > 1:
        raise InputError("(end of file)", "a section is not closed", file)
    return root


def _uncomment(line: str) -> str:
    """The line without its comment; a '#' inside double quotes is kept."""
    quoted = False
    for i, c in enumerate(line):
        if c == '"':
            quoted = not quoted
        elif c == "#" and not quoted:
            return line[:i]
    return line


def words(value: str) -> list[str]:
    """A list setting (``a, b``) as its items."""
    return [w.strip() for w in value.split(",") if w.strip()]


def offered(conf: dict) -> dict[str, dict[str, list[str]]]:
    """connection -> {"ike": [...], "esp": [...]}: the proposals each connection offers."""
    out = {}
    for name, conn in conf.get("connections", {}).items():
        esp = [
            p
            for child in conn.get("children", {}).values()
            for p in words(child.get("esp_proposals", "default"))
        ]
        out[name] = {"ike": words(conn.get("proposals", "default")), "esp": esp}
    return out
