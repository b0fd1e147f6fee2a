"""A command started on this host (inside a namespace through ``ip netns exec``, or not),
followed while it runs: the Process of the netns runtime, and of captures on host bridges."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
from typing import IO


class HostProcess:
    """A command in a namespace (or on this host), its output gathered as it comes."""

    def __init__(self, node: str, argv: list[str], command: list[str]) -> None:
        self.node, self.argv = node, argv
        self._proc = self._popen(command)
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _popen(self, command: list[str]) -> subprocess.Popen:
        return subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )

    def _gathered(self) -> IO[bytes]:
        assert self._proc.stdout is not None
        return self._proc.stdout

    def _read(self) -> None:
        stream = self._gathered()
        while chunk := stream.read1(65536):  # type: ignore[attr-defined]
            self._chunks.append(chunk)

    @property
    def exit_code(self) -> int | None:
        return self._proc.poll()

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._reader.join(5)  # the pipe drains once the command has ended
        return self.exit_code

    def stop(self, sig: int = signal.SIGINT) -> None:
        if self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(sig)

    def output(self) -> str:
        return b"".join(self._chunks).decode(errors="replace")
