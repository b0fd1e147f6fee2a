"""The handle every layer above works through: a lab whose nodes exist.

It holds the resolved lab, its runtime and its recorded state, and hands out the daemons
of each node. What is *done* with a lab (bring-up phases, faults, probes) lives in the
layers above and takes this handle.
"""

from __future__ import annotations

import subprocess
from functools import cached_property

from lab.core.errors import LabError
from lab.core.paths import lab_dir
from lab.core.processes import stop_process
from lab.daemons.charon import Charon
from lab.daemons.frr import Frr
from lab.runtime import make as make_runtime
from lab.runtime.base import Runtime
from lab.session import state as lab_state
from lab.session.state import LabState
from lab.topology.choices import USERSPACE
from lab.topology.model import Lab

EXEC_TIMEOUT = 600.0  # `vpnlab exec` and scenario commands: long, but never endless


class RunningLab:
    def __init__(self, lab: Lab, state: LabState) -> None:
        self.lab = lab
        self.state = state

    @classmethod
    def attach(cls, name: str) -> RunningLab:
        """The handle of a lab that is up, from its recorded state."""
        return cls(*lab_state.load(name))

    @property
    def name(self) -> str:
        return self.lab.name

    @cached_property
    def runtime(self) -> Runtime:
        return make_runtime(self.state.runtime, self.lab.name, self.lab.address_plan())

    def record(self, **changes: object) -> LabState:
        """Change the lab's recorded state (under its lock) and keep the new one."""
        with lab_state.changing(self.name) as s:
            for key, value in changes.items():
                setattr(s, key, value)
        self.state = s
        return s

    def replace_lab(self, lab: Lab) -> None:
        """Run ``lab`` from now on (the same lab, as its data planes made it), and keep it
        in the lab's state for every later command."""
        lab_state.save_lab(lab)
        self.lab = lab

    def dataplane(self, node: str) -> str:
        """The IPsec data plane a gateway uses: the kernel's ESP or userspace."""
        return self.state.dataplane.get(node, USERSPACE)

    @cached_property
    def charons(self) -> dict[str, Charon]:
        """The lab's charons by node (every tunnel endpoint runs one)."""
        return {n: Charon(self.runtime, n) for n, node in self.lab.nodes.items() if node.charon}

    @cached_property
    def frrs(self) -> dict[str, Frr]:
        """The lab's FRR instances by node (routers and BGP speakers)."""
        return {
            n: Frr(self.runtime, n, static=bool(node.routes) or "frr.conf" in node.supplied)
            for n, node in self.lab.nodes.items()
            if node.frr
        }

    def charon(self, node: str) -> Charon:
        if node not in self.charons:
            raise LabError(f"{node} runs no charon (not a tunnel endpoint)")
        return self.charons[node]

    def frr(self, node: str) -> Frr:
        if node not in self.frrs:
            raise LabError(f"{node} runs no FRR")
        return self.frrs[node]

    def exec(
        self, node: str, argv: list[str], check: bool = False, timeout: float = EXEC_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        if node not in self.lab.nodes:
            raise LabError(
                f"no node {node!r} in lab {self.name}; nodes: {', '.join(self.lab.nodes)}"
            )
        return self.runtime.run(node, argv, check=check, timeout=timeout)

    def down(self) -> None:
        """Remove the lab: its recorder, its nodes (and every process in them), segments
        and state."""
        # The nodes first: the recorder's subscriptions and log readers end with them, so
        # it has nothing left to take apart (on Docker: no exec to stop) when it is stopped.
        self.runtime.destroy()
        stop_process(self.state.recorder, marker=str(lab_dir(self.name)))
        lab_state.remove(self.name)
