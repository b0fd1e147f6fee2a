"""FRR's zebra, staticd and bgpd, one set per routing node, read through vtysh JSON."""

from __future__ import annotations

import json
import shlex
import socket
from functools import cached_property

from lab.daemons.charon import tail
from lab.errors import LabError
from lab.runtime.base import Runtime
from lab.waits import wait_until

FRR_BIN = "/usr/lib/frr"
DAEMONS = ("zebra", "staticd", "bgpd")


class Frr:
    def __init__(self, runtime: Runtime, node: str) -> None:
        self.runtime = runtime
        self.node = node
        self.dir = runtime.node_dir(node) / "frr"

    @cached_property
    def daemons(self) -> tuple[str, ...]:
        """FRR 9 and later (Debian 13) configure zebra and staticd through mgmtd."""
        mgmtd = self.runtime.run(self.node, ["test", "-x", f"{FRR_BIN}/mgmtd"], check=False)
        return ("mgmtd", *DAEMONS) if mgmtd.returncode == 0 else DAEMONS

    def _argv(self, daemon: str) -> list[str]:
        d = self.dir
        # FRR 8 daemons read a config file of their own unless told otherwise; FRR 10 ones
        # take theirs only from vtysh and have no -f.
        no_file = ["-f", "/dev/null"] if "mgmtd" not in self.daemons else []
        return [f"{FRR_BIN}/{daemon}", "-d", *no_file, "-i", f"{d}/{daemon}.pid",
                "-z", f"{d}/zserv.api", "--vty_socket", str(d), "--log", f"file:{d}/{daemon}.log"]

    def start(self) -> None:
        # Few commands, each a daemon that forks into the background: in a container every
        # command is an exec round trip. mgmtd (FRR 10) comes up before zebra.
        mkdir = shlex.join(["install", "-d", "-o", "frr", "-g", "frr", str(self.dir)])
        for daemon in self.daemons[:-2]:
            start = shlex.join(self._argv(daemon))
            self.runtime.run(self.node, ["sh", "-c", f"{mkdir} && {start}"])
            if daemon == "mgmtd":
                self.wait_ready(daemons=("mgmtd",))
        # staticd and bgpd only need zebra's socket.
        self.runtime.run(self.node, ["sh", "-c", " && ".join(shlex.join(self._argv(d))
                                                            for d in self.daemons[-2:])])

    def restart(self, daemon: str, conf_file: str) -> None:
        """Start one daemon again (after a kill) and give it back its configuration."""
        self.runtime.run(self.node, ["rm", "-f", f"{self.dir}/{daemon}.vty"])
        self.runtime.run(self.node, self._argv(daemon))
        self.wait_ready(daemons=(daemon,))
        self.configure(conf_file)

    def wait_ready(self, timeout: float = 10, daemons: tuple[str, ...] | None = None) -> None:
        wait_until(lambda: self._missing_sockets(daemons or self.daemons),
                   lambda missing: not missing,
                   timeout=timeout, interval=0.02, what=f"FRR vty sockets on {self.node}")

    def configure(self, conf_file: str) -> None:
        proc = self.vtysh(["-f", conf_file], check=False)
        if proc.returncode != 0:
            raise LabError(f"{self.node}: FRR rejected {conf_file}: "
                           f"{(proc.stdout + proc.stderr).strip()[:800]}")

    def vtysh(self, args: list[str], check: bool = True):
        return self.runtime.run(self.node, ["vtysh", "--vty_socket", str(self.dir), *args],
                                check=check)

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
        path = self.runtime.local_path(self.node, self.dir / f"{daemon}.vty")
        if path is None:
            raise FileNotFoundError("the vty socket is inside a container: use vtysh")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
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
        sockets = " ".join(f"{self.dir}/{d}.vty" for d in daemons)
        proc = self.runtime.run(self.node, ["sh", "-c", f"for s in {sockets}; do "
                                            '[ -S "$s" ] || echo "$s"; done'], check=False)
        return proc.stdout.split()

    def log_tail(self, lines: int = 10) -> str:
        return tail(self.runtime.read_file(self.node, self.dir / "bgpd.log") or "", lines)


def _json(text: str) -> dict:
    try:
        return json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        return {}
