"""FRR's zebra, staticd and bgpd, one set per routing node, read through vtysh JSON."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor

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

    def _argv(self, daemon: str) -> list[str]:
        d = self.dir
        return [f"{FRR_BIN}/{daemon}", "-d", "-f", "/dev/null", "-i", f"{d}/{daemon}.pid",
                "-z", f"{d}/zserv.api", "--vty_socket", str(d), "--log", f"file:{d}/{daemon}.log"]

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.dir, "frr", "frr")
        self.runtime.run(self.node, self._argv("zebra"))
        # staticd and bgpd only need zebra's socket; start them side by side.
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda d: self.runtime.run(self.node, self._argv(d)), DAEMONS[1:]))

    def wait_ready(self, timeout: float = 10) -> None:
        sockets = [self.dir / f"{d}.vty" for d in DAEMONS]
        wait_until(lambda: [s.name for s in sockets if not s.exists()], lambda missing: not missing,
                   timeout=timeout, interval=0.02, what=f"FRR vty sockets on {self.node}")

    def configure(self, conf_file: str) -> None:
        proc = self.vtysh(["-f", conf_file], check=False)
        if proc.returncode != 0:
            raise LabError(f"{self.node}: FRR rejected {conf_file}: "
                           f"{(proc.stdout + proc.stderr).strip()[:800]}")

    def vtysh(self, args: list[str], check: bool = True):
        return self.runtime.run(self.node, ["vtysh", "--vty_socket", str(self.dir), *args],
                                check=check)

    def show(self, command: str) -> dict:
        """``show ... json`` as a dict; {} if FRR does not answer."""
        proc = self.vtysh(["-c", f"{command} json"], check=False)
        try:
            return json.loads(proc.stdout) if proc.returncode == 0 else {}
        except json.JSONDecodeError:
            return {}

    def bgp_peers(self) -> dict[str, dict]:
        return self.show("show bgp ipv4 unicast summary").get("peers", {})

    def routes(self) -> dict[str, list[dict]]:
        return self.show("show ip route")

    def log_tail(self, lines: int = 10) -> str:
        return tail(self.dir / "bgpd.log", lines)
