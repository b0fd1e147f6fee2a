"""Bring a resolved lab up in named phases, and take it down again.

validate -> prepare -> create nodes -> wire segments -> render -> configure nodes ->
start daemons -> load configs -> wait for convergence. Each phase is a method that can
be called and timed on its own; ``down`` is the reverse and always runs to the end.
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import cached_property, partial
from typing import TypeVar

from lab import dataplane, state
from lab.checks import Problem, convergence_problems
from lab.daemons.charon import Charon
from lab.daemons.frr import Frr
from lab.diagnose import diagnose
from lab.errors import ConvergenceTimeout, LabError
from lab.render import render_node
from lab.render.swanctl import connections, secrets
from lab.runtime import make as make_runtime
from lab.runtime.base import Link
from lab.runtime.netns import lab_namespaces
from lab.topology.model import Lab, Node
from lab.waits import wait_until

T = TypeVar("T")
Progress = Callable[[str, float], None]  # a phase finished, after so many seconds
Pending = Callable[[list[Problem]], None]  # what convergence still waits for
CONVERGE_TIMEOUT = 30.0
IKE_HOLD = "vpnlab_ike_hold"  # nftables table that holds IKE back while charon restarts


def _quiet(phase: str, seconds: float) -> None:
    pass


def _ignore(problems: list[Problem]) -> None:
    pass


class RunningLab:
    """A lab whose nodes exist: the handle scenarios, checks and the CLI work through."""

    def __init__(self, lab: Lab, meta: dict | None = None, runtime: str = "netns") -> None:
        self.lab = lab
        self.meta = meta or {}
        self.runtime = make_runtime(self.meta.get("runtime", runtime), lab.name,
                                    lab.address_plan())

    @classmethod
    def attach(cls, name: str) -> RunningLab:
        lab, meta = state.load(name)
        return cls(lab, meta)


    @property
    def name(self) -> str:
        return self.lab.name

    def dataplane(self, node: str) -> str:
        """The IPsec data plane a gateway uses: the kernel's ESP or userspace."""
        return self.meta.get("dataplane", {}).get(node, dataplane.USERSPACE)

    @cached_property
    def _charons(self) -> dict[str, Charon]:
        return {n: Charon(self.runtime, n) for n, node in self.lab.nodes.items() if node.charon}

    @cached_property
    def _frrs(self) -> dict[str, Frr]:
        return {n: Frr(self.runtime, n) for n, node in self.lab.nodes.items() if node.frr}

    def charon(self, node: str) -> Charon:
        if node not in self._charons:
            raise LabError(f"{node} runs no charon (not a tunnel endpoint)")
        return self._charons[node]

    def frr(self, node: str) -> Frr:
        if node not in self._frrs:
            raise LabError(f"{node} runs no FRR")
        return self._frrs[node]

    def exec(self, node: str, argv: list[str], check: bool = False):
        if node not in self.lab.nodes:
            raise LabError(f"no node {node!r} in lab {self.name}; nodes: "
                           f"{', '.join(self.lab.nodes)}")
        return self.runtime.run(node, argv, check=check, timeout=600)

    # phases -------------------------------------------------------------------------------
    def prepare(self) -> None:
        if lab_namespaces(self.name) or self.name in state.names():
            raise LabError(f"lab {self.name!r} is already up (or left over): "
                           f"run 'vpnlab down {self.name}' first")
        self.meta = {"runtime": self.runtime.kind, "started": time.time(), "pid": os.getpid(),
                     "phase": "prepare"}
        state.save(self.lab, self.meta)

    def create_nodes(self) -> None:
        """The nodes, and beside them (one after another) the segments they will join."""
        _together([*(partial(self.runtime.create_node, n.name, n.release,
                             {"net.ipv4.ip_forward": "1" if n.forwarding else "0"})
                     for n in self.lab.nodes.values()), self._create_segments])

    def _create_segments(self) -> None:
        used = {i.segment for n in self.lab.nodes.values() for i in n.interfaces}
        for seg, subnet in self.lab.segments.items():
            if seg in used:
                taken = {i.address.ip for n in self.lab.nodes.values() for i in n.interfaces
                         if i.segment == seg}
                self.runtime.create_segment(seg, subnet, taken)

    def wire_segments(self) -> None:
        _each(lambda node: self.runtime.attach(
            node.name, [Link(i.segment, i.name, i.address) for i in node.interfaces]),
            self.lab.nodes.values())

    def render(self) -> None:
        planes: dict[str, str] = {}

        def write(node: Node) -> None:
            # Each gateway's data plane is what its own kernel offers (ESP or not), unless
            # the topology (or 'up --dataplane') asked for one.
            plane = dataplane.choose(self.lab.dataplane, dataplane.detect(self.runtime, node.name),
                                     node.name) if node.charon else None
            if plane:
                planes[node.name] = plane
            d = self.runtime.node_dir(node.name)
            files = render_node(self.lab, node, d, vici=self.runtime.vici_uri(node.name),
                                userspace=plane != dataplane.KERNEL)
            self.runtime.write_files(node.name, d, files)

        _each(write, self.lab.nodes.values())
        self.meta = state.update_meta(self.name, {"dataplane": planes})

    def configure_nodes(self) -> None:
        def configure(node: Node) -> None:
            # One command per node (on Docker, one exec): its firewall, then the static
            # routes of a node without FRR (FRR nodes get theirs from staticd).
            steps = [shlex.join(["nft", "-f", str(self.runtime.node_dir(node.name) /
                                                  "nftables.nft")])]
            if not node.frr:
                steps += [f"ip route replace {r.to} via {r.via}" for r in node.routes]
            self.runtime.run(node.name, ["sh", "-c", " && ".join(steps)])

        _each(configure, self.lab.nodes.values())

    def start_daemons(self) -> None:
        # FRR reads its configuration as it starts, all nodes at once: bgpd waits a second
        # (its start timer) before its first connection, by which time the routers, whose
        # iBGP neighbors are passive, are listening.
        _together([*(c.start for c in self._charons.values()),
                   *(f.start for f in self._frrs.values())])
        _each(Charon.wait_ready, self._charons.values())

    def load_configs(self) -> None:
        _each(self._add_inside_addresses,
              [n for n in self._charons if self.lab.nodes[n].inside_addresses])
        # Responders first, so the initiators' first IKE packet finds a loaded config.
        for kind in ("provider", "customer"):
            _each(self._load_connections,
                  [n for n in self._charons if self.lab.nodes[n].site_kind == kind])

    def load_charon(self, node: str) -> None:
        """Give a (re)started charon its inside addresses, keys and connections."""
        if self.lab.nodes[node].inside_addresses:
            self._add_inside_addresses(node)
        self._load_connections(node)

    def _load_connections(self, node: str) -> None:
        self.charon(node).load(connections(self.lab, node), secrets(self.lab, node, reveal=True))

    def restart_daemon(self, node: str, daemon: str) -> None:
        """Start a killed daemon again with the lab's configuration."""
        if daemon == "charon":
            with self._ike_held(node):
                self.charon(node).start()
                self.charon(node).wait_ready()
                self.load_charon(node)
        else:
            self.frr(node).restart(daemon)

    @contextmanager
    def _ike_held(self, node: str) -> Iterator[None]:
        """Drop IKE arriving at ``node`` while its charon has no connections loaded yet.
        Such a charon answers a peer's retry with NO_PROPOSAL_CHOSEN, and a strongSwan
        initiator gives up for good on that error (keyingtries only covers silence): the
        tunnel would stay down. Held back, the retry comes again once the config is in."""
        self.runtime.run(node, ["nft", "-f", "-"], input=(
            f"table inet {IKE_HOLD} {{\n  chain input {{\n"
            "    type filter hook input priority -300; policy accept;\n"
            "    udp dport { 500, 4500 } counter drop\n  }\n}\n"))
        try:
            yield
        finally:
            self.runtime.run(node, ["nft", "delete", "table", "inet", IKE_HOLD], check=False)

    def _add_inside_addresses(self, node: str) -> None:
        """BGP inside addresses go on the TUN device (userspace) or loopback (kernel ESP)."""
        dev = "ipsec0" if self.dataplane(node) == dataplane.USERSPACE else "lo"
        # One command that fails until charon has created the TUN device: the poll is the add.
        add = " && ".join(f"ip addr replace {a} dev {dev}"
                          for a in self.lab.nodes[node].inside_addresses)
        wait_until(lambda: self.runtime.run(node, ["sh", "-c", add], check=False).returncode,
                   lambda rc: rc == 0, timeout=5, interval=0.02,
                   what=f"{dev} on {node} for the inside addresses")

    def wait_converged(self, timeout: float = CONVERGE_TIMEOUT,
                       pending: Pending = _ignore) -> None:
        def probe() -> list[Problem]:
            problems = convergence_problems(self)
            pending(problems)
            return problems

        wait_until(probe, lambda p: not p, timeout=timeout, interval=0.05,
                   what=f"lab {self.name} to converge", explain=self._explain,
                   error=ConvergenceTimeout)
        self.meta = state.update_meta(self.name, {"phase": "converged",
                                                  "converged": time.time()})

    def _explain(self, problems: list[Problem]) -> str:
        """The diagnosed causes, the problems, then what each daemon involved logged."""
        lines = [f"  cause: {d}" for d in _diagnose(self)]
        lines += [f"  - {p}" for p in problems]
        for node, tunnel in sorted({(p.node, p.tunnel) for p in problems if p.kind == "ike"}):
            lines.append(f"  charon on {node}, {tunnel}:")
            lines.append(_indent(self.charon(node).tunnel_log(tunnel)))
        for node in sorted({p.node for p in problems if p.kind == "bgp"}):
            lines.append(f"  bgpd on {node}:")
            lines.append(_indent(self.frr(node).log_tail(5)))
        return "\n".join(lines)

    def down(self) -> None:
        self.runtime.destroy()
        state.remove(self.name)

    def phases(self, timeout: float,
               pending: Pending = _ignore) -> list[tuple[str, Callable[[], None]]]:
        """The deploy phases after ``prepare``, in order."""
        return [
            ("create nodes", self.create_nodes),
            ("wire segments", self.wire_segments),
            ("render configs", self.render),
            ("configure nodes", self.configure_nodes),
            ("start daemons", self.start_daemons),
            ("load configs", self.load_configs),
            ("wait for convergence", lambda: self.wait_converged(timeout, pending)),
        ]


def up(lab: Lab, *, progress: Progress = _quiet, pending: Pending = _ignore,
       timeout: float = CONVERGE_TIMEOUT, keep_on_timeout: bool = False,
       runtime: str = "netns") -> RunningLab:
    """Deploy ``lab`` and wait until it has converged.

    Any failure (and Ctrl-C) tears the partial lab down, except a convergence timeout with
    ``keep_on_timeout``: then the lab stays for inspection and the error says so.
    """
    running = RunningLab(lab, runtime=runtime)
    running.prepare()
    try:
        for phase, run in running.phases(timeout, pending):
            t0 = time.monotonic()
            state.update_meta(lab.name, {"phase": phase})
            run()
            progress(phase, time.monotonic() - t0)
    except ConvergenceTimeout as exc:
        if keep_on_timeout:
            raise ConvergenceTimeout(f"{exc}\nlab {lab.name} left up for inspection; "
                                     f"'vpnlab down {lab.name}' removes it") from None
        running.down()
        raise
    except BaseException:
        running.down()
        raise
    return running


def _diagnose(running: RunningLab) -> list[object]:
    # A diagnosis is a bonus on top of the timeout report: it must never replace it.
    try:
        return diagnose(running)
    except Exception as exc:
        return [f"(diagnosis failed: {exc!r})"]


def _each(work: Callable[[T], object], items: Iterable[T]) -> None:
    """Do ``work`` for every item side by side: most of a phase is waiting on the kernel,
    a daemon or the Docker engine, node by node. The first error is raised."""
    with ThreadPoolExecutor(8) as pool:
        for _ in pool.map(work, list(items)):
            pass


def _together(jobs: Iterable[Callable[[], object]]) -> None:
    """Run different jobs side by side, as ``_each`` does one job over many items."""
    _each(lambda job: job(), jobs)


def _indent(text: str) -> str:
    return "\n".join("      " + line for line in text.splitlines())
