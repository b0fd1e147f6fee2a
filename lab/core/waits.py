"""Polling real state until a condition holds: the only way vpnlab waits."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from lab.core.errors import WaitTimeout

T = TypeVar("T")


def wait_until(
    probe: Callable[[], T],
    done: Callable[[T], bool],
    *,
    timeout: float,
    interval: float = 0.1,
    what: str = "condition",
    explain: Callable[[T], str] = repr,
    error: type[WaitTimeout] = WaitTimeout,
) -> T:
    """Call ``probe`` until ``done(value)``; return that value.

    On timeout raise ``error`` (a WaitTimeout) carrying the last value seen (``explain`` turns it
    into text), so the failure says what state things were stuck in.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if done(value):
            return value
        if time.monotonic() >= deadline:
            raise error(
                f"timed out after {timeout:g}s waiting for {what}; last seen:\n{explain(value)}"
            )
        time.sleep(interval)


def holds_for(
    probe: Callable[[], T], ok: Callable[[T], bool], seconds: float, interval: float = 0.1
) -> T | None:
    """Poll for ``seconds`` that a condition stays true; the first value that is not
    ``ok``, or None if every one was."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = probe()
        if not ok(value):
            return value
        time.sleep(interval)
    return None
