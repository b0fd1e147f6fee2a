"""Host processes vpnlab starts beside a lab (its recorder): started detached so that they
outlive the command that started them, stopped only if they are still the same process."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

from lab.core.errors import WaitTimeout
from lab.core.waits import wait_until


def start_detached(argv: list[str], log: Path) -> int:
    """Start ``argv`` in a session of its own (Ctrl-C on the terminal does not reach it),
    output to ``log``; its pid."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
        )
    return proc.pid


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def stop_process(pid: int | None, marker: str, timeout: float = 2.0) -> None:
    """SIGTERM ``pid`` if its command line still holds ``marker`` (a recycled pid is left
    alone), SIGKILL if it has not ended within ``timeout``."""
    if not pid or marker.encode() not in _cmdline(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
        # An ended process has no command line (a zombie included).
        wait_until(lambda: _cmdline(pid), lambda c: not c, timeout=timeout, interval=0.02,
                   what=f"process {pid} to end")  # fmt: skip
    except ProcessLookupError:
        return
    except WaitTimeout:
        os.kill(pid, signal.SIGKILL)
    # Started by this very process (a test, a bench): reap it, or it stays a zombie.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
