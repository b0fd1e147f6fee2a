"""What a node runtime offers the layers above it: network namespaces or Docker containers.

Everything above this layer reaches a node only through these methods: no host paths, no
/proc, no host namespace. That is what lets the same lab run in containers on a laptop.
Both runtimes honour every parameter; ``scenarios/test_runtime_contract.py`` holds them to
it. New capabilities (packet capture, event streams) come as methods here, built on
``background`` where they are long-running commands.
"""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import Sequence
from ipaddress import IPv4Interface, IPv4Network
from pathlib import Path, PurePosixPath
from typing import NamedTuple, Protocol

# A Linux bridge takes at most 1024 ports (BR_MAX_PORTS), in a namespace as under Docker.
MAX_SEGMENT_NODES = 1024
NODE_SYSCTLS = {
    "net.ipv6.conf.all.disable_ipv6": "1",
    "net.ipv6.conf.default.disable_ipv6": "1",
    "net.ipv4.conf.all.rp_filter": "0",
    "net.ipv4.conf.default.rp_filter": "0",
    # No ICMP redirects: a host told "go via vgw1 directly" keeps using vgw1 after the
    # router has failed over, as no VPC route table would let it.
    "net.ipv4.conf.all.send_redirects": "0",
    "net.ipv4.conf.default.send_redirects": "0",
    "net.ipv4.conf.all.accept_redirects": "0",
    "net.ipv4.conf.default.accept_redirects": "0",
}


class Link(NamedTuple):
    """One of a node's interfaces: on which segment, its name, its address."""

    segment: str
    ifname: str
    address: IPv4Interface


class Process(Protocol):
    """A command running inside a node while the caller goes on (a probe, a capture)."""

    node: str
    argv: list[str]

    @property
    def exit_code(self) -> int | None:
        """None while it runs."""
        ...

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait up to ``timeout`` seconds for it to end; its exit code, or None if it still
        runs."""
        ...

    def stop(self, sig: int = signal.SIGINT) -> None:
        """Send it a signal (SIGINT: end it the way Ctrl-C would); no-op once it ended."""
        ...

    def output(self) -> str:
        """Everything it printed so far (stdout and stderr, interleaved)."""
        ...


class Runtime(Protocol):
    kind: str
    lab: str

    # nodes and wiring
    def create_node(self, node: str, release: str, sysctls: dict[str, str]) -> None: ...
    def create_segment(self, segment: str, subnet: IPv4Network, size: int) -> None:
        """An L2 segment for ``size`` nodes, numbered ``subnet`` (the nodes' addresses are
        set by ``attach``)."""
        ...

    def attach(self, node: str, links: Sequence[Link]) -> None: ...

    # files inside a node
    def node_dir(self, node: str) -> PurePosixPath: ...
    def write_files(self, node: str, directory: PurePosixPath, files: dict[str, str]) -> None: ...
    def read_file(self, node: str, path: PurePosixPath) -> str | None: ...

    # commands, daemons, processes
    def run(
        self,
        node: str,
        argv: list[str],
        *,
        check: bool = True,
        input: str | None = None,
        timeout: float = 30,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command to its end. Raises LabError on a non-zero exit with ``check``, and
        CommandTimeout (naming node and command) when it outlives ``timeout`` (it is killed)."""
        ...

    def background(self, node: str, argv: list[str]) -> Process: ...
    def spawn(self, node: str, argv: list[str], *, env: dict[str, str], log: PurePosixPath) -> None:
        """Start a daemon, detached: it outlives the caller, sees a /run of its node's own
        (never the host's), and appends its output to ``log``."""
        ...

    def processes(self, node: str) -> dict[int, str]: ...
    def kill(self, node: str, pids: list[int]) -> None: ...

    # packet capture
    def capture(self, pcap: Path, *, interface: str, node: str | None = None) -> Process:
        """tcpdump on ``node``'s ``interface``, or, with no node, on the segment named
        ``interface`` as a whole (its bridge); the pcap goes to ``pcap`` on this host until
        the process is stopped (SIGINT). Its ``output()`` is tcpdump's stderr, which says
        "listening on" once it captures."""
        ...

    # sockets inside a node
    def unix_socket(self, node: str, path: PurePosixPath) -> socket.socket | None:
        """A connection to a Unix socket inside the node, or None where the runtime cannot
        reach one directly (a container's sockets are behind the Docker API)."""
        ...

    def vici_uri(self, node: str) -> str: ...
    def vici_socket(self, node: str) -> socket.socket: ...

    def destroy(self) -> None: ...


def check_segment(segment: str, size: int) -> None:
    from lab.core.errors import LabError

    if size > MAX_SEGMENT_NODES:
        raise LabError(
            f"segment {segment}: {size} nodes, but a Linux bridge takes at most {MAX_SEGMENT_NODES}"
        )
