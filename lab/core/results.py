"""One check's outcome, the one shape every part of vpnlab reports: a conformance check, an
exercise's check on a trainee's lab, a scenario test in a report. JUnit, the HTML report
and the terminal tables all render it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from lab.core.redaction import redact

# pass / fail / skip (not run, or nothing to check); a report adds a form's warnings and
# errors and a test's error.
Verdict = Literal["pass", "fail", "skip", "warn", "error"]


@dataclass(frozen=True)
class CheckResult:
    name: str  # "proposals: tunnel1", "tunnel1 is up", a test's id
    verdict: Verdict
    expected: str = ""
    seen: str = ""
    why: str = ""  # on failure: the cause, where it is known
    record: str = ""  # in a report: the folder of the lab it ran on, if any

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def redacted(self, secrets: list[str]) -> CheckResult:
        """The same result with none of ``secrets`` in its texts."""
        texts = ("name", "expected", "seen", "why")
        return replace(self, **{f: redact(getattr(self, f), secrets) for f in texts})


def verdict(ok: bool) -> Verdict:
    return "pass" if ok else "fail"
