"""Packet capture as a runtime capability: tcpdump writes pcap to its stdout and we write
that stream to a file on this host, so a capture in a container needs no file copied out.

The command is tcpdump itself (the host's for namespaces and for Docker's host bridges,
the node image's inside a container); nothing here writes pcap by hand.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
from pathlib import Path
from typing import BinaryIO

# --immediate-mode: libpcap hands each packet over as it comes (by default the kernel's
# ring passes on blocks, once a second or when full: a capture stopped within a second of
# its packets lost them all); -U: each is written out at once; -n: no name lookups (they
# would leave the lab); -w -: pcap on stdout.
TCPDUMP = ["tcpdump", "--immediate-mode", "-n", "-U", "-w", "-"]
LISTENING = "listening on"  # tcpdump's stderr once the interface is capturing


def tcpdump_argv(interface: str) -> list[str]:
    return [*TCPDUMP, "-i", interface]


class HostCapture:
    """A tcpdump started on this host (maybe inside a namespace through ``ip netns exec``):
    its stdout goes straight to ``pcap``, its stderr is gathered for ``output()``."""

    def __init__(self, node: str, argv: list[str], command: list[str], pcap: Path) -> None:
        self.node, self.argv = node, argv
        self._file: BinaryIO = pcap.open("wb")
        self._proc = subprocess.Popen(
            command, stdout=self._file, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stderr is not None
        while chunk := self._proc.stderr.read1(4096):
            self._chunks.append(chunk)

    @property
    def exit_code(self) -> int | None:
        code = self._proc.poll()
        if code is not None:
            self._file.close()
        return code

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._reader.join(5)
        return self.exit_code

    def stop(self, sig: int = signal.SIGINT) -> None:
        if self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(sig)

    def output(self) -> str:
        return b"".join(self._chunks).decode(errors="replace")
