"""Daemon logs as an engineer reads them: the last lines, or the lines about one thing."""

from __future__ import annotations


def tail(log: str, lines: int, grep: str | None = None) -> str:
    text = log.splitlines()
    if not text:
        return "(no log yet)"
    if grep:
        text = [line for line in text if grep in line]
    return "\n".join(text[-lines:])
