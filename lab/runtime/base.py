"""What a node runtime offers the layers above it: network namespaces or Docker containers.

Everything above this line reaches a node only through these methods: no host paths, no
/proc, no host namespace. That is what lets the same lab run in containers on a laptop.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path, PurePosixPath
from typing import NamedTuple, Protocol


class Link(NamedTuple):
    """One of a node's interfaces: on which segment, its name, its address."""

    segment: str
    ifname: str
    address: IPv4Interface


class Runtime(Protocol):
    kind: str
    lab: str

    # nodes and wiring
    def create_node(self, node: str, release: str, sysctls: dict[str, str]) -> None: ...
    def create_segment(self, segment: str, subnet: IPv4Network,
                       taken: set[IPv4Address]) -> None: ...
    def attach(self, node: str, links: Sequence[Link]) -> None: ...

    # files inside a node
    def node_dir(self, node: str) -> PurePosixPath: ...
    def write_files(self, node: str, directory: PurePosixPath, files: dict[str, str]) -> None: ...
    def read_file(self, node: str, path: PurePosixPath) -> str | None: ...
    def local_path(self, node: str, path: PurePosixPath) -> Path | None: ...

    # commands, daemons, processes
    def run(self, node: str, argv: list[str], *, check: bool = True, input: str | None = None,
            timeout: float = 30) -> subprocess.CompletedProcess[str]: ...
    def background(self, node: str, argv: list[str]) -> subprocess.Popen[str]: ...
    def spawn(self, node: str, argv: list[str], *, env: dict[str, str], log: PurePosixPath,
              private_run: bool = False) -> None: ...
    def processes(self, node: str) -> dict[int, str]: ...
    def kill(self, node: str, pids: list[int]) -> None: ...

    # charon's control socket
    def vici_uri(self, node: str) -> str: ...
    def vici_socket(self, node: str) -> socket.socket: ...

    def destroy(self) -> None: ...
