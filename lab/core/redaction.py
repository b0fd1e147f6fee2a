"""Keys kept out of what vpnlab writes for people: reports, copied logs, test output."""

from __future__ import annotations

REDACTED = "<redacted>"


def redact(text: str, secrets: list[str]) -> str:
    """``text`` with every one of ``secrets`` replaced."""
    for s in secrets:
        if s:
            text = text.replace(s, REDACTED)
    return text
