"""wait_until: returns what it waited for, or fails fast saying what it last saw."""

from __future__ import annotations

import itertools
import time

import pytest

from lab.core.errors import ConvergenceTimeout, LabError, WaitTimeout
from lab.core.waits import wait_until


def test_returns_the_value_that_satisfied_done() -> None:
    counter = itertools.count(1)
    seen: list[int] = []

    def probe() -> int:
        seen.append(next(counter))
        return seen[-1]

    assert wait_until(probe, lambda n: n >= 3, timeout=5, interval=0.001) == 3
    assert seen == [1, 2, 3]  # stops probing as soon as done


def test_done_on_first_probe_does_not_sleep() -> None:
    start = time.monotonic()
    assert wait_until(lambda: "up", lambda s: s == "up", timeout=5, interval=10) == "up"
    assert time.monotonic() - start < 1


def test_timeout_raises_with_last_seen_state() -> None:
    counter = itertools.count(1)
    seen: list[dict] = []

    def probe() -> dict:
        seen.append({"state": "CONNECTING", "attempt": next(counter)})
        return seen[-1]

    start = time.monotonic()
    with pytest.raises(WaitTimeout) as info:
        wait_until(
            probe,
            lambda s: s["state"] == "ESTABLISHED",
            timeout=0.2,
            interval=0.01,
            what="tunnel1 ESTABLISHED",
            explain=lambda s: f"tunnel1 is {s['state']} (attempt {s['attempt']})",
        )
    elapsed = time.monotonic() - start

    assert 0.2 <= elapsed < 1.0
    assert len(seen) > 1  # it kept polling until the deadline
    message = str(info.value)
    assert "timed out after 0.2s waiting for tunnel1 ESTABLISHED" in message
    # The very last probe's value, as explained, not an earlier one.
    assert f"tunnel1 is CONNECTING (attempt {seen[-1]['attempt']})" in message
    assert isinstance(info.value, LabError)


def test_timeout_default_explain_is_repr() -> None:
    with pytest.raises(WaitTimeout) as info:
        wait_until(lambda: {"bgp": "Active"}, lambda s: False, timeout=0.2, interval=0.05)
    assert "{'bgp': 'Active'}" in str(info.value)
    assert "waiting for condition" in str(info.value)


def test_wait_until_raises_the_error_type_asked_for():
    # Only convergence waits raise ConvergenceTimeout (which `up` may keep a lab for);
    # a daemon that never starts is a plain WaitTimeout.
    with pytest.raises(ConvergenceTimeout):
        wait_until(lambda: 0, bool, timeout=0.05, error=ConvergenceTimeout)
    assert issubclass(ConvergenceTimeout, WaitTimeout)
