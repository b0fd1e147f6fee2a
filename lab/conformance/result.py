"""A conformance check's result: a CheckResult named "<check>: <subject>"."""

from __future__ import annotations

from lab.core.results import CheckResult, Verdict


def result(
    check: str, subject: str, expected: str, seen: str, verdict: Verdict, why: str = ""
) -> CheckResult:
    """``check``: what kind ("tunnel up", "service", ...); ``subject``: what it was about
    ("tunnel1", "web-services", ...)."""
    return CheckResult(f"{check}: {subject}", verdict, expected, seen, why)
