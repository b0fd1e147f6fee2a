"""One conformance check's result: what was expected, what was seen, the verdict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Verdict = Literal["pass", "fail", "skip"]


@dataclass(frozen=True)
class Result:
    check: str  # what kind of check: "tunnel up", "service", ...
    subject: str  # what it was about: "tunnel1", "web-services", ...
    expected: str
    seen: str
    verdict: Verdict
    why: str = ""  # on failure: the cause, where it is known

    @property
    def name(self) -> str:
        return f"{self.check}: {self.subject}"


def verdict(ok: bool) -> Verdict:
    return "pass" if ok else "fail"
