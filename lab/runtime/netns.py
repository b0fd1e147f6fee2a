"""Nodes as Linux network namespaces, wired with veth pairs into per-segment bridges.

Every object carries the lab's name: namespaces are ``vpnlab.<lab>.<node>`` and the
segment bridges live in the lab's own ``vpnlab.<lab>._fabric`` namespace, so nothing is
ever created in the host's namespace.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shlex
import signal
import socket
import subprocess
from collections.abc import Sequence
from ipaddress import IPv4Network
from pathlib import Path, PurePosixPath

from pyroute2 import NetNS, netns

from lab.core.errors import CommandTimeout, LabError
from lab.core.paths import lab_dir
from lab.runtime.base import NODE_SYSCTLS, Link, check_segment
from lab.runtime.capture import HostCapture, tcpdump_argv
from lab.runtime.hostprocess import HostProcess
from lab.topology.choices import HOST_RELEASE

PREFIX = "vpnlab."
FABRIC = "_fabric"


def namespace(lab: str, node: str) -> str:
    return f"{PREFIX}{lab}.{node}"


def lab_namespaces(lab: str | None = None) -> list[str]:
    """Our namespaces, of one lab or of all labs."""
    want = f"{PREFIX}{lab}." if lab else PREFIX
    return sorted(n for n in netns.listnetns() if n.startswith(want))


class NetnsRuntime:
    kind = "netns"

    def __init__(self, lab: str) -> None:
        self.lab = lab
        self.fabric = namespace(lab, FABRIC)
        self._segments: list[str] = []
        self._ports = itertools.count(1)  # next() is atomic: nodes are wired side by side

    # nodes and wiring -------------------------------------------------------------------
    def create_node(
        self, node: str, release: str = HOST_RELEASE, sysctls: dict[str, str] | None = None
    ) -> None:
        if release != HOST_RELEASE:
            raise LabError(
                f"{node}: release {release} needs the Docker runtime (network "
                f"namespaces run this machine's own strongSwan and FRR, "
                f"{HOST_RELEASE})"
            )
        name = namespace(self.lab, node)
        if name in netns.listnetns():
            raise LabError(
                f"namespace {name} already exists: is lab {self.lab!r} already up? "
                f"(vpnlab down {self.lab})"
            )
        # iproute2 rather than pyroute2's NetNS, here and in the wiring: a third of the CPU,
        # which is what a lab of a hundred sites waits on.
        _ip(["netns", "add", name])
        values = {**NODE_SYSCTLS, **(sysctls or {})}
        sysctl = ["sysctl", "-q", "-w", *(f"{k}={v}" for k, v in values.items())]
        self.run(node, ["sh", "-c", f"ip link set lo up && {shlex.join(sysctl)}"])
        Path(self.node_dir(node)).mkdir(parents=True, exist_ok=True)

    def create_segment(self, segment: str, subnet: IPv4Network, size: int) -> None:
        check_segment(segment, size)
        if self.fabric not in netns.listnetns():
            _ip(["netns", "add", self.fabric])
        self._segments.append(segment)
        bridge = self._bridge(segment)
        # The bridge's name is brN (15 characters at most): its alias says what it is.
        _ip_batch(
            self.fabric,
            [f"link add {bridge} type bridge", f'link set {bridge} alias "{segment} {subnet}" up'],
        )

    def _bridge(self, segment: str) -> str:
        return f"br{self._segments.index(segment)}"

    def segment_bridge(self, segment: str) -> str | None:
        """The fabric bridge of ``segment``, found by its alias (a runtime attached to a
        running lab did not create the bridges itself)."""
        if self.fabric not in netns.listnetns():
            return None
        with NetNS(self.fabric) as ns:
            for link in ns.get_links():
                alias = link.get_attr("IFLA_IFALIAS") or ""
                if alias.split(" ")[0] == segment:
                    return link.get_attr("IFLA_IFNAME")
        return None

    def attach(self, node: str, links: Sequence[Link]) -> None:
        """Each link a veth made in the node under its final name and address, its peer a
        port of the segment's bridge in the fabric: two ``ip -batch`` runs per node (one in
        each namespace), which costs a tenth of the CPU of a netlink socket opened per
        namespace and link, the most of a 100-site lab's wiring."""
        fabric, inside = [], []
        for link in links:
            port = f"p{next(self._ports)}"
            inside += [
                f"link add {link.ifname} type veth peer name {port} netns {self.fabric}",
                f"addr add {link.address} dev {link.ifname}",
                f"link set {link.ifname} up",
            ]
            fabric.append(f"link set {port} master {self._bridge(link.segment)} up")
        _ip_batch(namespace(self.lab, node), inside)
        _ip_batch(self.fabric, fabric)

    # commands and daemons ----------------------------------------------------------------
    def _argv(self, node: str, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", namespace(self.lab, node), *argv]

    def run(
        self,
        node: str,
        argv: list[str],
        *,
        check: bool = True,
        input: str | None = None,
        timeout: float = 30,
    ) -> subprocess.CompletedProcess[str]:
        # A session of its own, so that a timeout ends the command's children too (a shell's
        # sleep), as coreutils' timeout does in a container; daemons that detach themselves
        # (setsid) are not in it.
        with subprocess.Popen(
            self._argv(node, argv),
            stdin=subprocess.PIPE if input is not None else None,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        ) as popen:
            try:
                out, err = popen.communicate(input, timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(popen)
                raise CommandTimeout(node, argv, timeout) from None
            except BaseException:  # interrupted: leave nothing of it behind
                _kill_group(popen)
                raise
        proc = subprocess.CompletedProcess(argv, popen.returncode, out, err)
        if check and proc.returncode != 0:
            raise LabError(
                f"{node}: {' '.join(argv)} exited {proc.returncode}: "
                f"{(proc.stderr or proc.stdout).strip()[:500]}"
            )
        return proc

    def background(self, node: str, argv: list[str]) -> HostProcess:
        """A command running in the node while we go on; its output is ours to read."""
        return HostProcess(node, argv, self._argv(node, argv))

    def spawn(self, node: str, argv: list[str], *, env: dict[str, str], log: PurePosixPath) -> None:
        """Start a daemon in the node, detached from us; it outlives this process."""
        # A /run of its own, as a container has: charon's pid file path is compiled in.
        argv = ["unshare", "-m", "sh", "-c", 'mount -t tmpfs tmpfs /run && exec "$0" "$@"', *argv]
        # setsid -f forks: the daemon is re-parented to init at once, so a long-lived
        # harness never collects zombies when daemons are killed.
        with open(log, "ab") as out:
            subprocess.run(
                ["setsid", "-f", *self._argv(node, argv)],
                env={**os.environ, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                check=True,
            )

    def capture(self, pcap: Path, *, interface: str, node: str | None = None) -> HostCapture:
        # The host's tcpdump inside the node's namespace, or inside the fabric namespace on
        # the segment's bridge: nothing is opened in the host's own namespace.
        if node is None:
            bridge = self.segment_bridge(interface)
            if bridge is None:
                raise LabError(f"lab {self.lab} has no segment {interface!r}")
            argv = tcpdump_argv(bridge)
            command = ["ip", "netns", "exec", self.fabric, *argv]
            return HostCapture(f"segment {interface}", argv, command, pcap)
        argv = tcpdump_argv(interface)
        return HostCapture(node, argv, self._argv(node, argv), pcap)

    # files: a node's files live on the host, so the namespaces share them with us -------
    def node_dir(self, node: str) -> PurePosixPath:
        return PurePosixPath(lab_dir(self.lab) / node)

    def write_files(self, node: str, directory: PurePosixPath, files: dict[str, str]) -> None:
        # As Docker's put_archive does: missing directories made, files readable by root only.
        for name, text in files.items():
            path = Path(directory) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(text)

    def read_file(self, node: str, path: PurePosixPath) -> str | None:
        try:
            return Path(path).read_text(errors="replace")
        except (FileNotFoundError, IsADirectoryError):
            return None

    def unix_socket(self, node: str, path: PurePosixPath) -> socket.socket:
        return _connect_unix(str(path))

    def processes(self, node: str) -> dict[int, str]:
        out = {}
        for pid in namespace_pids(namespace(self.lab, node)):
            try:
                out[pid] = Path(f"/proc/{pid}/comm").read_text().strip()
            except OSError:
                continue
        return out

    def kill(self, node: str, pids: list[int]) -> None:
        kill(pids)

    def vici_uri(self, node: str) -> str:
        return f"unix://{self.node_dir(node)}/charon.vici"

    def vici_socket(self, node: str) -> socket.socket:
        return _connect_unix(f"{self.node_dir(node)}/charon.vici")

    def destroy(self) -> None:
        destroy_namespaces(lab_namespaces(self.lab))


def _connect_unix(path: str, timeout: float = 10) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        raise
    return sock


def _ip(args: list[str], stdin: str | None = None) -> None:
    proc = subprocess.run(["ip", *args], input=stdin, capture_output=True, text=True)
    if proc.returncode != 0:
        raise LabError(f"ip {' '.join(args[:3])}: {(proc.stderr or proc.stdout).strip()[:500]}")


def _ip_batch(ns: str, commands: list[str]) -> None:
    """iproute2 commands in one namespace, in one run; the first that fails stops it."""
    if commands:
        _ip(["-n", ns, "-batch", "-"], "\n".join(commands) + "\n")


def _kill_group(popen: subprocess.Popen) -> None:
    """SIGKILL a command started in a session of its own, with everything still in it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(popen.pid, signal.SIGKILL)
    popen.wait()


def namespace_pids(name: str) -> list[int]:
    proc = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
    return [int(p) for p in proc.stdout.split()]


def kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def destroy_namespaces(names: list[str]) -> None:
    """Kill every process inside, then delete the namespaces (and with them their links)."""
    for name in names:
        kill(namespace_pids(name))
    for name in names:
        try:
            netns.remove(name)
        except OSError:
            subprocess.run(["ip", "netns", "delete", name], capture_output=True)
