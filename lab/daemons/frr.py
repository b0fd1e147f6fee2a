"""FRR's zebra, staticd and bgpd, one set per routing node, read through vtysh JSON."""

from __future__ import annotations

import json
import shlex
from functools import cached_property

from lab.core.errors import LabError
from lab.core.waits import wait_until
from lab.daemons.logs import tail
from lab.runtime.base import Runtime

FRR_BIN = "/usr/lib/frr"
DAEMONS = ("zebra", "staticd", "bgpd")
# FRR sizes its event loop's tables by the process's file limit: 20000 here costs zebra
# ~2 MB and bgpd ~1.5 MB more than 1024, and a container's limit can be far higher. 4096
# leaves room for some 2000 BGP sessions on one node.
FD_LIMIT = 4096


class Frr:
    """``static``: the node has static routes (or a supplied frr.conf that may hold some),
    so it runs staticd; without any it runs zebra and bgpd only: a daemon fewer to start
    and to keep in memory, on most nodes of a BGP lab."""

    def __init__(self, runtime: Runtime, node: str, static: bool = True) -> None:
        self.runtime = runtime
        self.node = node
        self.dir = runtime.node_dir(node) / "frr"
        self.classic = DAEMONS if static else tuple(d for d in DAEMONS if d != "staticd")

    @cached_property
    def daemons(self) -> tuple[str, ...]:
        """FRR 9 and later (Debian 13) configure zebra and staticd through mgmtd."""
        mgmtd = self.runtime.run(self.node, ["test", "-x", f"{FRR_BIN}/mgmtd"], check=False)
        return ("mgmtd", *self.classic) if mgmtd.returncode == 0 else self.classic

    def _argv(self, daemon: str, mgmtd: bool) -> list[str]:
        d = self.dir
        # Each daemon reads its own file at start: bgpd always; staticd and zebra on FRR 8
        # (zebra has nothing to read). FRR 10's mgmtd, zebra and staticd take no file.
        if daemon == "bgpd" or (daemon == "staticd" and not mgmtd):
            conf = ["-f", f"{d}/{daemon}.conf"]
        else:
            conf = [] if mgmtd else ["-f", "/dev/null"]
        return [
            f"{FRR_BIN}/{daemon}",
            "-d",
            "--limit-fds",
            str(FD_LIMIT),
            *conf,
            "-i",
            f"{d}/{daemon}.pid",
            "-z",
            f"{d}/zserv.api",
            "--vty_socket",
            str(d),
            "--log",
            f"file:{d}/{daemon}.log",
        ]

    def _static_routes(self) -> str:
        """The shell command that gives mgmtd (FRR 10) staticd's routes, if there are any.
        It runs before bgpd is up: vtysh marks a config load, and bgpd holds its sessions
        back for a second after one."""
        conf = f"{self.dir}/staticd.conf"
        return (
            f"if grep -q '^ip route' {conf}; then "
            f"{shlex.join(['vtysh', '--vty_socket', str(self.dir), '-f', conf])}; fi"
        )

    def start(self) -> None:
        """Start every daemon with its configuration in one command (on Docker every
        command is an exec round trip). ``-d`` returns once a daemon is ready, so each
        finds the one before it listening; mgmtd (FRR 10) comes first. bgpd starts right
        after zebra, so that its one-second start timer runs while the rest starts."""
        d, bin_ = self.dir, FRR_BIN
        static = "staticd" in self.classic
        files = [str(self.runtime.node_dir(self.node) / f"{n}.conf") for n in ("staticd", "bgpd")]
        modern = [
            *(shlex.join(self._argv(n, True)) for n in ("mgmtd", *self.classic) if n != "bgpd"),
            *([self._static_routes()] if static else []),
            shlex.join(self._argv("bgpd", True)),
            "echo mgmtd",
        ]
        order = ("zebra", "bgpd", "staticd")
        classic = [shlex.join(self._argv(n, False)) for n in order if n in self.classic]
        script = "\n".join(
            [
                "set -e",
                shlex.join(["install", "-d", "-o", "frr", "-g", "frr", str(d)]),
                shlex.join(["install", "-m", "600", "-o", "frr", "-g", "frr", *files, str(d)]),
                f"if [ -x {bin_}/mgmtd ]; then",
                *modern,
                "else",
                *classic,
                "fi",
                # A daemon skips the lines of its file it rejects, logs each and goes on
                # without them; the lines are in its log when -d returns (150 of 150 starts
                # under full CPU load). A line rejected fails the start, and the bring-up
                # removes the lab. (A dry run, -C, would cost a third of FRR's start CPU:
                # 1.5 s of a 100-site lab's bring-up.)
                f"rejected=$(cat {d}/bgpd.log {d}/staticd.log 2>/dev/null "
                "| grep 'on config line' || true)",
                'if [ -n "$rejected" ]; then echo "$rejected" | sed "s/^/rejected: /"; exit 3; fi',
                self._missing_command(("mgmtd", *self.classic)),
            ]
        )
        supplied = self.runtime.node_dir(self.node) / "frr.conf"
        script += "\n" + "\n".join(
            [
                # A supplied frr.conf is loaded through vtysh once the daemons run, after a
                # dry run that names the lines FRR rejects.
                f"if [ -f {supplied} ]; then",
                f"  if ! rejected=$(vtysh -C -f {supplied} 2>&1); then",
                '    echo "$rejected" | sed "s/^/rejected: /"; exit 3',
                "  fi",
                "  " + shlex.join(["vtysh", "--vty_socket", str(d), "-f", str(supplied)]),
                "fi",
            ]
        )
        proc = self.runtime.run(self.node, ["sh", "-c", script], check=False)
        rejected = [line for line in proc.stdout.splitlines() if line.startswith("rejected: ")]
        if rejected:
            raise LabError(
                f"{self.node}: FRR rejected its configuration:\n" + "\n".join(rejected[:10])
            )
        if proc.returncode != 0:
            raise LabError(
                f"{self.node}: starting FRR failed ({proc.returncode}): "
                f"{(proc.stderr or proc.stdout).strip()[:800]}"
            )
        said = proc.stdout.split()
        self.__dict__["daemons"] = ("mgmtd", *self.classic) if "mgmtd" in said else self.classic
        if {f"{d}/{n}.vty" for n in self.daemons} & set(said):
            self.wait_ready()

    def restart(self, daemon: str) -> None:
        """Start one daemon again (after a kill); it reads its own configuration, or (FRR
        10) mgmtd's routes are given again."""
        mgmtd = "mgmtd" in self.daemons
        again = shlex.join(self._argv(daemon, mgmtd))
        if mgmtd and daemon != "bgpd":
            again += " && " + self._static_routes()
        self.runtime.run(self.node, ["sh", "-c", f"rm -f {self.dir}/{daemon}.vty && {again}"])
        self.wait_ready(daemons=(daemon,))

    def wait_ready(self, timeout: float = 10, daemons: tuple[str, ...] | None = None) -> None:
        wait_until(
            lambda: self._missing_sockets(daemons or self.daemons),
            lambda missing: not missing,
            timeout=timeout,
            interval=0.02,
            what=f"FRR vty sockets on {self.node}",
        )

    def vtysh(self, args: list[str], check: bool = True):
        return self.runtime.run(
            self.node, ["vtysh", "--vty_socket", str(self.dir), *args], check=check
        )

    def show(self, command: str, daemon: str | None = None) -> dict:
        """``show ... json`` as a dict; {} if FRR does not answer.

        With ``daemon`` the command goes straight to that daemon's vty socket: vtysh costs
        ~40 ms of CPU per call (it builds its whole command tree), which the convergence
        poll would otherwise spend several times a second on a 2-core machine.
        """
        if daemon is not None:
            try:
                text = self.vty(daemon, f"{command} json")
                return _json(text) if text is not None else {}
            except OSError:
                pass  # no such socket (yet), or it closed on us: ask vtysh instead
        proc = self.vtysh(["-c", f"{command} json"], check=False)
        return _json(proc.stdout) if proc.returncode == 0 else {}

    def vty(self, daemon: str, command: str, timeout: float = 5) -> str | None:
        """One command on ``daemon``'s vty socket, as vtysh sends it; None if it failed.

        The protocol (FRR lib/vty.c, vtysh_read): the command NUL-terminated; the answer is
        the output followed by three NULs and the command's status byte (0: success).
        """
        sock = self.runtime.unix_socket(self.node, self.dir / f"{daemon}.vty")
        if sock is None:
            raise FileNotFoundError("the vty socket is out of reach (in a container): use vtysh")
        with sock:
            sock.settimeout(timeout)
            sock.sendall(command.encode() + b"\0")
            out = bytearray()
            while len(out) < 4 or out[-4:-1] != b"\0\0\0":
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError(f"{daemon} on {self.node} closed the vty")
                out += chunk
        return out[:-4].decode(errors="replace") if out[-1] == 0 else None

    def bgp_peers(self) -> dict[str, dict]:
        return self.show("show bgp ipv4 unicast summary", daemon="bgpd").get("peers", {})

    def routes(self) -> dict[str, list[dict]]:
        return self.show("show ip route", daemon="zebra")

    def _missing_sockets(self, daemons: tuple[str, ...]) -> list[str]:
        proc = self.runtime.run(
            self.node, ["sh", "-c", self._missing_command(daemons)], check=False
        )
        return proc.stdout.split()

    def _missing_command(self, daemons: tuple[str, ...]) -> str:
        """A shell loop printing the vty socket of each daemon that has none (yet)."""
        sockets = " ".join(f"{self.dir}/{d}.vty" for d in daemons)
        return f'for s in {sockets}; do [ -S "$s" ] || echo "$s"; done'

    def log_tail(self, lines: int = 10) -> str:
        return tail(self.runtime.read_file(self.node, self.dir / "bgpd.log") or "", lines)


def _json(text: str) -> dict:
    try:
        return json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        return {}
