"""Nodes as Docker containers, driven only through the Docker API (exec, networks, copy).

Nothing here touches the host's namespace or file system directly, so it works the same
against a local dockerd or Docker Desktop's VM:
- each segment is an internal bridge network with no IPv4 address on the host side
  (``inhibit_ipv4``): no host route, no NAT, lab addresses stay inside the lab;
- each node is a container with NET_ADMIN, SYS_ADMIN (FRR needs it) and /dev/net/tun
  (kernel-libipsec), not privileged;
- charon's vici listens on TCP on the container's management interface, published on
  127.0.0.1 only; the management default route is removed so lab traffic cannot leave;
- files go in with put_archive and come out through exec.
Every container and network carries the labels ``vpnlab=1`` and ``vpnlab.lab=<lab>``.
"""

from __future__ import annotations

import contextlib
import io
import signal
import socket
import subprocess
import tarfile
import threading
import time
import uuid
from collections.abc import Sequence
from functools import cached_property
from ipaddress import IPv4Network
from pathlib import Path, PurePosixPath
from typing import BinaryIO

# Imported here, in the thread that loads this module: importing parts of the docker
# package from several threads at once breaks on its circular imports.
from docker.errors import APIError, NotFound
from docker.types import IPAMConfig, IPAMPool

from lab.core.errors import CommandTimeout, LabError
from lab.core.hostlock import host_lock
from lab.core.paths import lab_dir
from lab.core.waits import wait_until
from lab.runtime.base import NODE_SYSCTLS, Link, check_segment
from lab.runtime.capture import HostCapture, tcpdump_argv
from lab.runtime.docker.engine import LABEL, client
from lab.runtime.docker.tags import NODE_REPO

VICI_PORT = 4502
MGMT_TRIES = 64  # Docker's default address pools number 31
# Stand-in subnets for the segments' Docker networks: Docker's bookkeeping only, never an
# address on the host or in a node (RFC 6598 shared address space).
SEGMENT_BLOCK = IPv4Network("100.64.0.0/10")
SEGMENT_TRIES = 8
# The engine's HTTP timeout: longer than any command (run()'s own timeout ends those).
CLIENT_TIMEOUT = 900
TIMED_OUT = 124  # GNU timeout's exit code when it had to end the command


def container_name(lab: str, node: str) -> str:
    return f"vpnlab-{lab}-{node}"


def stand_in_prefix(nodes: int) -> int:
    """The smallest subnet Docker can number ``nodes`` containers in (it also books a
    network, a gateway and a broadcast address); /29 at least."""
    return 32 - max(3, (nodes + 2).bit_length())


def first_free(block: IPv4Network, prefix: int, avoid: Sequence[IPv4Network]) -> IPv4Network | None:
    return next(
        (b for b in block.subnets(new_prefix=prefix) if not any(b.overlaps(n) for n in avoid)), None
    )


class DockerRuntime:
    kind = "docker"

    def __init__(self, lab: str, address_plan: Sequence[IPv4Network] = ()) -> None:
        self.lab = lab
        self.address_plan = list(address_plan)
        self.mgmt = f"vpnlab-{lab}-mgmt"
        self._containers: dict = {}
        self._vici_ports: dict[str, int] = {}
        self._networks: dict = {}
        self._booked: list[IPv4Network] | None = None  # subnets of Docker's networks
        self._mgmt_lock = threading.Lock()

    @cached_property
    def docker(self):
        return client(timeout=CLIENT_TIMEOUT)

    def _labels(self, **extra: str) -> dict[str, str]:
        return {LABEL: "1", f"{LABEL}.lab": self.lab, **extra}

    def _container(self, node: str):
        if node not in self._containers:
            try:
                self._containers[node] = self.docker.containers.get(container_name(self.lab, node))
            except Exception as exc:
                raise LabError(
                    f"{node}: no container {container_name(self.lab, node)} ({exc})"
                ) from None
        return self._containers[node]

    # nodes and wiring -------------------------------------------------------------------
    def create_node(self, node: str, release: str, sysctls: dict[str, str] | None = None) -> None:
        from lab.runtime.docker import images

        tag = f"{NODE_REPO}:{release}"  # the release's current image, once built
        try:
            self.docker.images.get(tag)
        except Exception:
            tag = images.build(release)
        name = container_name(self.lab, node)
        self._ensure_mgmt_network()
        try:
            c = self.docker.containers.run(
                tag,
                ["sleep", "infinity"],
                name=name,
                hostname=node,
                detach=True,
                init=True,
                labels=self._labels(**{f"{LABEL}.node": node, f"{LABEL}.release": release}),
                cap_add=["NET_ADMIN", "SYS_ADMIN"],
                devices=["/dev/net/tun:/dev/net/tun"],
                # /proc/sys is read-only in a container: sysctls are set at creation.
                sysctls={**NODE_SYSCTLS, **(sysctls or {})},
                network=self.mgmt,
                ports={f"{VICI_PORT}/tcp": ("127.0.0.1", None)},
            )
        except Exception as exc:
            raise LabError(f"{node}: cannot start container {name}: {exc}") from None
        # run() returns what the engine said at creation, before the start gave the
        # container its management address: vici's URI is rendered before the wiring.
        c.reload()
        self._containers[node] = c

    def _ensure_mgmt_network(self) -> None:
        """The lab's own management bridge, for vici only: a fresh one per lab, so nothing
        left on Docker's default bridge by other containers can clash with it.

        Its subnet is a connected route in every node, so it must not overlap the lab's
        networks: a node would send lab packets to mgmt0 (Docker hands out its pools in
        turn, and 192.168.48.0/20 once took a thredd-static LAN's replies). Docker picks
        the pool, which keeps its own checks against the host's routes; a pool that
        overlaps is held by a placeholder network so that Docker offers another."""
        with self._mgmt_lock:
            # The names filter matches substrings: another lab's networks may answer.
            if any(n.name == self.mgmt for n in self.docker.networks.list(names=[self.mgmt])):
                return
            held, tried = [], []
            try:
                for attempt in range(MGMT_TRIES):
                    net = self.docker.networks.create(
                        self.mgmt,
                        driver="bridge",
                        labels=self._labels(**{f"{LABEL}.segment": "mgmt"}),
                    )
                    subnet = IPv4Network(net.attrs["IPAM"]["Config"][0]["Subnet"])
                    if not any(subnet.overlaps(n) for n in self.address_plan):
                        return
                    tried.append(subnet)
                    net.remove()
                    held.append(self._hold(subnet, attempt))
                raise LabError(
                    f"Docker offered no address pool outside this lab's networks for its "
                    f"management network (tried {', '.join(map(str, tried))}): give dockerd "
                    f"default-address-pools that the lab does not use"
                )
            finally:
                for net in filter(None, held):
                    net.remove()

    def _hold(self, subnet: IPv4Network, attempt: int):
        try:
            return self.docker.networks.create(
                f"{self.mgmt}-held{attempt}",
                driver="bridge",
                ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=str(subnet))]),
                labels=self._labels(**{f"{LABEL}.segment": "mgmt-held"}),
                options={"com.docker.network.bridge.inhibit_ipv4": "true"},
            )
        except Exception:
            return None  # taken meanwhile: then Docker will not offer it again either

    def create_segment(self, segment: str, subnet: IPv4Network, size: int) -> None:
        check_segment(segment, size)
        # Docker's IPAM refuses two networks with overlapping subnets, and two labs share
        # an address plan. So Docker books a small stand-in subnet from SEGMENT_BLOCK, the
        # bridge gets no host address (inhibit_ipv4), and the lab's addresses are set inside
        # the nodes; stand-ins keep Docker's own pools (31 by default) for the management
        # network and for everyone else's networks.
        # Not "internal": Docker then drops bridged frames whose source is outside that
        # subnet, i.e. every lab packet. No masquerading: nothing leaves through the host.
        error: Exception | None = None
        for _ in range(SEGMENT_TRIES):
            # One booking at a time among this host's vpnlab processes (labs brought up side
            # by side would otherwise pick the same free block); another client of the
            # engine can still take it first, hence the retries.
            with host_lock("docker-networks"):
                stand_in = self._free_stand_in(stand_in_prefix(size))
                try:
                    self._networks[segment] = self.docker.networks.create(
                        f"vpnlab-{self.lab}-{segment}",
                        driver="bridge",
                        ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=str(stand_in))]),
                        labels=self._labels(
                            **{f"{LABEL}.segment": segment, f"{LABEL}.subnet": str(subnet)}
                        ),
                        options={
                            "com.docker.network.bridge.inhibit_ipv4": "true",
                            "com.docker.network.bridge.enable_ip_masquerade": "false",
                        },
                    )
                    return
                except APIError as exc:
                    error = exc  # booked since we looked (by another lab): look again
                    self._booked = None
        raise LabError(f"segment {segment}: cannot create Docker network: {error}")

    def _free_stand_in(self, prefix: int) -> IPv4Network:
        """The first block of SEGMENT_BLOCK that no Docker network and no lab network use."""
        if self._booked is None:
            self._booked = [
                IPv4Network(c["Subnet"])
                for n in self.docker.networks.list()
                for c in (n.attrs.get("IPAM") or {}).get("Config") or []
                if "." in c.get("Subnet", "")
            ]
        block = first_free(SEGMENT_BLOCK, prefix, self._booked + self.address_plan)
        if block is None:
            raise LabError(f"no free /{prefix} left in {SEGMENT_BLOCK} for a Docker network")
        self._booked.append(block)
        return block

    def attach(self, node: str, links: Sequence[Link]) -> None:
        c = self._container(node)
        for link in links:
            self._network(link.segment).connect(c)
        c.reload()
        networks = c.attrs["NetworkSettings"]["Networks"]
        # One exec for the whole node. The management interface exists for vici only: it
        # loses its default route (the only one: flushing the others' addresses leaves them
        # none). Docker's ethN are found by the address Docker gave them
        # and renamed in two steps (a lab may call an interface eth1 while Docker's eth1 is
        # another segment); Docker's addresses make way for the lab's.
        steps = ["{ ip route del default 2>/dev/null; true; }", "ip link set eth0 name mgmt0"]
        for i, link in enumerate(links):
            given = networks[f"vpnlab-{self.lab}-{link.segment}"]["IPAddress"]
            steps.append(
                f"dev=$(ip -o -4 addr show to {given}/32 | awk '{{print $2}}') && "
                f'ip link set "$dev" down && ip addr flush dev "$dev" && '
                f'ip link set "$dev" name vpnlab{i}'
            )
        for i, link in enumerate(links):
            steps.append(
                f"ip link set vpnlab{i} name {link.ifname} && "
                f"ip addr add {link.address} dev {link.ifname} && "
                f"ip link set {link.ifname} up"
            )
        self.run(node, ["sh", "-c", " && ".join(steps)])

    def _network(self, segment: str):
        if segment not in self._networks:
            try:
                self._networks[segment] = self.docker.networks.get(f"vpnlab-{self.lab}-{segment}")
            except Exception:
                raise LabError(f"lab {self.lab} has no segment {segment!r}") from None
        return self._networks[segment]

    # files -------------------------------------------------------------------------------
    def node_dir(self, node: str) -> PurePosixPath:
        return PurePosixPath(lab_dir(self.lab) / node)

    def write_files(self, node: str, directory: PurePosixPath, files: dict[str, str]) -> None:
        # One archive, one API call, for all of a node's files, unpacked at / so that
        # Docker makes the missing directories too.
        buf = io.BytesIO()
        inside = directory.relative_to("/")
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for name, text in files.items():
                data = text.encode()
                info = tarfile.TarInfo(str(inside / name))
                info.size, info.mode = len(data), 0o600
                tar.addfile(info, io.BytesIO(data))
        if not self._container(node).put_archive("/", buf.getvalue()):
            raise LabError(f"{node}: could not copy its files into {directory}")

    def read_file(self, node: str, path: PurePosixPath) -> str | None:
        proc = self.run(node, ["cat", str(path)], check=False)
        return proc.stdout if proc.returncode == 0 else None

    def unix_socket(self, node: str, path: PurePosixPath) -> None:
        return None  # inside the container, maybe on another machine (Docker Desktop)

    # commands and daemons ----------------------------------------------------------------
    def run(
        self,
        node: str,
        argv: list[str],
        *,
        check: bool = True,
        input: str | None = None,
        timeout: float = 30,
    ) -> subprocess.CompletedProcess[str]:
        env = None
        command = argv
        if input is not None:
            # exec has no stdin to write to: hand the text over in the environment.
            env = {"VPNLAB_STDIN": input}
            command = ["sh", "-c", 'printf "%s" "$VPNLAB_STDIN" | "$@"', "sh", *command]
        # The engine has no exec timeout: coreutils' timeout ends the command inside.
        limited = ["timeout", "-k", "2", f"{timeout:g}", *command]
        t0 = time.monotonic()
        code, (out, err) = self._container(node).exec_run(limited, demux=True, environment=env)
        if code == TIMED_OUT and time.monotonic() - t0 >= timeout:
            raise CommandTimeout(node, argv, timeout)
        proc = subprocess.CompletedProcess(
            argv, code, (out or b"").decode(errors="replace"), (err or b"").decode(errors="replace")
        )
        if check and code != 0:
            raise LabError(
                f"{node}: {' '.join(argv)} exited {code}: "
                f"{(proc.stderr or proc.stdout).strip()[:500]}"
            )
        return proc

    def background(self, node: str, argv: list[str]) -> ExecProcess:
        return ExecProcess(self, node, argv)

    def spawn(self, node: str, argv: list[str], *, env: dict[str, str], log: PurePosixPath) -> None:
        # The container has a /run of its own: nothing to add.
        self._container(node).exec_run(
            ["sh", "-c", f'exec "$@" >>{log} 2>&1', "sh", *argv], environment=env, detach=True
        )

    def capture(
        self, pcap: Path, *, interface: str, node: str | None = None
    ) -> ExecCapture | HostCapture:
        if node is not None:
            # The image's tcpdump, its pcap streamed out through the exec: no file to copy
            # out, and it works where the engine is remote (Docker Desktop).
            return ExecCapture(self, node, tcpdump_argv(interface), pcap)
        # A segment is a bridge on the engine's host: read with the host's tcpdump, as the
        # bridge is (only possible where the engine runs on this host).
        network = self._network(interface)
        bridge = (network.attrs.get("Options") or {}).get(
            "com.docker.network.bridge.name", f"br-{network.id[:12]}"
        )
        if not Path("/sys/class/net", bridge).exists():
            raise LabError(
                f"segment {interface}: its bridge {bridge} is not on this host (a remote "
                f"Docker engine?); capture on a node's interface instead (NODE:IFACE)"
            )
        argv = tcpdump_argv(bridge)
        return HostCapture(f"segment {interface}", argv, argv, pcap)

    def processes(self, node: str) -> dict[int, str]:
        out = self.run(node, ["ps", "-eo", "pid=,comm="], check=False).stdout
        procs = {}
        for line in out.splitlines():
            pid, _, comm = line.strip().partition(" ")
            if pid.isdigit():
                procs[int(pid)] = comm.strip()
        return procs

    def kill(self, node: str, pids: list[int]) -> None:
        if pids:
            self.run(node, ["kill", "-9", *map(str, pids)], check=False)

    # vici ----------------------------------------------------------------------------------
    def vici_uri(self, node: str) -> str:
        c = self._container(node)
        address = c.attrs["NetworkSettings"]["Networks"][self.mgmt]["IPAddress"]
        return f"tcp://{address}:{VICI_PORT}"

    def vici_socket(self, node: str) -> socket.socket:
        """Straight to the container's management address where the engine is local (Linux);
        through the port published on 127.0.0.1 where it is not (Docker Desktop's VM)."""
        address = self.vici_uri(node).removeprefix("tcp://").rsplit(":", 1)[0]
        try:
            return socket.create_connection((address, VICI_PORT), timeout=1)
        except OSError:
            pass
        if node not in self._vici_ports:
            c = self._container(node)
            c.reload()
            bound = (c.attrs["NetworkSettings"]["Ports"] or {}).get(f"{VICI_PORT}/tcp")
            if not bound:
                raise ConnectionRefusedError(f"{node}: vici port not published")
            self._vici_ports[node] = int(bound[0]["HostPort"])
        return socket.create_connection(("127.0.0.1", self._vici_ports[node]), timeout=10)

    def destroy(self) -> None:
        destroy_labelled(self.docker, {f"{LABEL}.lab": self.lab})


def destroy_labelled(docker_client, labels: dict[str, str]) -> dict[str, list[str]]:
    """Remove the containers, then the networks, carrying these labels."""
    selector = [f"{k}={v}" for k, v in labels.items()]

    def left() -> list:
        return docker_client.containers.list(all=True, filters={"label": selector})

    containers = left()
    for c in containers:
        try:
            c.remove(force=True)
        except NotFound:
            pass
        except APIError as exc:
            if exc.status_code != 409:  # 409: another process (a dying lab's) is removing it
                raise
    # A network cannot go while a container being removed elsewhere still holds it.
    wait_until(left, lambda cs: not cs, timeout=60, interval=0.2, what="containers removed")
    networks = docker_client.networks.list(filters={"label": selector})
    for n in networks:
        with contextlib.suppress(NotFound):
            n.remove()
    return {"containers": [c.name for c in containers], "networks": [n.name for n in networks]}


class ExecProcess:
    """A command in a container through a streaming exec, its output gathered as it comes;
    its pid (in the container) is written to a file so that it can be signalled."""

    SHELL = 'echo $$ > {pidfile}; exec "$@" 2>&1'  # stdout and stderr, interleaved

    def __init__(self, runtime: DockerRuntime, node: str, argv: list[str]) -> None:
        self.node, self.argv = node, argv
        self._runtime = runtime
        self._pidfile = f"/tmp/vpnlab-bg-{uuid.uuid4().hex[:8]}"
        api = runtime.docker.api
        self._exec = api.exec_create(
            runtime._container(node).id,
            ["sh", "-c", self.SHELL.format(pidfile=self._pidfile), "sh", *argv],
        )["Id"]
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._pump, args=(self._start(),), daemon=True)
        self._reader.start()
        self._code: int | None = None

    def _start(self):
        return self._runtime.docker.api.exec_start(self._exec, stream=True)

    def _pump(self, stream) -> None:
        self._chunks.extend(stream)

    @property
    def exit_code(self) -> int | None:
        if self._code is None and not self._reader.is_alive():
            info = self._runtime.docker.api.exec_inspect(self._exec)
            if not info["Running"]:
                self._code = info["ExitCode"]
        return self._code

    def wait(self, timeout: float | None = None) -> int | None:
        self._reader.join(timeout)  # the stream ends when the command does
        return self.exit_code

    def stop(self, sig: int = signal.SIGINT) -> None:
        if self.exit_code is None:
            kill = f"kill -{int(sig)} $(cat {self._pidfile}); rm -f {self._pidfile}"
            self._runtime.run(self.node, ["sh", "-c", kill], check=False)

    def output(self) -> str:
        return b"".join(self._chunks).decode(errors="replace")


class ExecCapture(ExecProcess):
    """A capture in a container: its stdout (the pcap) is streamed into a file on this
    host, its stderr kept for ``output()``."""

    SHELL = 'echo $$ > {pidfile}; exec "$@"'

    def __init__(self, runtime: DockerRuntime, node: str, argv: list[str], pcap: Path) -> None:
        self._file: BinaryIO = pcap.open("wb")
        super().__init__(runtime, node, argv)

    def _start(self):
        return self._runtime.docker.api.exec_start(self._exec, stream=True, demux=True)

    def _pump(self, stream) -> None:
        try:
            for out, err in stream:
                if out:
                    self._file.write(out)
                    self._file.flush()
                if err:
                    self._chunks.append(err)
        finally:
            self._file.close()
