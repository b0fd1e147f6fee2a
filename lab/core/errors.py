"""Errors vpnlab raises on purpose; the CLI maps each to an exit code."""

from __future__ import annotations

from pathlib import Path


class VpnlabError(Exception):
    """Base of every error the CLI reports without a traceback."""

    exit_code = 1


class InputError(VpnlabError):
    """A file the user gave (topology, profile, form, template) breaks a rule; nothing has
    been started. The message names the file, the field and the rule."""

    exit_code = 2

    def __init__(self, field: str, rule: str, file: Path | str | None = None) -> None:
        self.field = field
        self.rule = rule
        self.file = str(file) if file else None
        super().__init__(self.message)

    @property
    def message(self) -> str:
        where = f"{self.file}: " if self.file else ""
        # Always one line: a key or value quoted with a newline must not split the report.
        return " ".join(f"{where}{self.field}: {self.rule}".splitlines())

    def in_file(self, file: Path | str) -> InputError:
        return type(self)(self.field, self.rule, file)


class TopologyError(InputError):
    """The topology file breaks a rule; nothing has been started."""


class LabError(VpnlabError):
    """Bringing up, driving or tearing down a lab failed."""


class WaitTimeout(LabError):
    """A wait gave up; the message carries the last state seen."""


class CommandTimeout(LabError):
    """A command inside a node did not finish in time (it has been killed)."""

    def __init__(self, node: str, argv: list[str], timeout: float) -> None:
        self.node, self.argv, self.timeout = node, argv, timeout
        super().__init__(
            f"{node}: {' '.join(argv)[:200]} did not finish within {timeout:g}s (killed)"
        )


class ConvergenceFailed(LabError):
    """The lab did not converge: the message says what was missing and why."""


class ConvergenceTimeout(WaitTimeout, ConvergenceFailed):
    """The lab did not converge in time; the message carries what was missing and the
    daemons' log lines about it."""


class TunnelFailed(ConvergenceFailed):
    """Diagnosis found a cause that will not go away by waiting (a proposal, key or IKE
    version mismatch): the bring-up stops there instead of waiting out its timeout."""
