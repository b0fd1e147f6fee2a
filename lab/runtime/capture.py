"""Packet capture as a runtime capability: tcpdump writes pcap to its stdout and we write
that stream to a file on this host, so a capture in a container needs no file copied out.

The command is tcpdump itself (the host's for namespaces and for Docker's host bridges,
the node image's inside a container); nothing here writes pcap by hand.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import IO, BinaryIO

from lab.runtime.hostprocess import HostProcess

# --immediate-mode: libpcap hands each packet over as it comes (by default the kernel's
# ring passes on blocks, once a second or when full: a capture stopped within a second of
# its packets lost them all); -U: each is written out at once; -n: no name lookups (they
# would leave the lab); -w -: pcap on stdout.
TCPDUMP = ["tcpdump", "--immediate-mode", "-n", "-U", "-w", "-"]
LISTENING = "listening on"  # tcpdump's stderr once the interface is capturing


def tcpdump_argv(interface: str) -> list[str]:
    return [*TCPDUMP, "-i", interface]


class HostCapture(HostProcess):
    """A tcpdump started on this host (maybe inside a namespace through ``ip netns exec``):
    its stdout goes straight to ``pcap``, its stderr is gathered for ``output()``."""

    def __init__(self, node: str, argv: list[str], command: list[str], pcap: Path) -> None:
        self._file: BinaryIO = pcap.open("wb")
        super().__init__(node, argv, command)

    def _popen(self, command: list[str]) -> subprocess.Popen:
        return subprocess.Popen(
            command, stdout=self._file, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
        )

    def _gathered(self) -> IO[bytes]:
        assert self._proc.stderr is not None
        return self._proc.stderr

    @property
    def exit_code(self) -> int | None:
        code = self._proc.poll()
        if code is not None:
            self._file.close()
        return code
