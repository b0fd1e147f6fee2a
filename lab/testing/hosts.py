"""pytest-testinfra hosts for lab nodes: ``host.run``, ``host.interface``... inside a node."""

from __future__ import annotations

from typing import Any

import testinfra
from testinfra.backend.base import CommandResult
from testinfra.backend.local import LocalBackend

from lab.runtime.netns import namespace


class NetnsBackend(LocalBackend):
    """Runs testinfra's shell commands inside one of the lab's network namespaces."""

    NAME = "vpnlab-netns"

    def __init__(self, netns: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.netns = netns

    def get_pytest_id(self) -> str:
        return self.netns

    def get_hostname(self) -> str:
        return self.netns

    def run(self, command: str, *args: str, **kwargs: Any) -> CommandResult:
        inner = self.get_command(command, *args)
        return self.run_local("ip netns exec %s sh -c %s", self.netns, inner)


def host(running, node: str) -> testinfra.host.Host:
    """A testinfra host for a node of a running lab, whichever runtime it is on."""
    if running.runtime.kind == "docker":
        from lab.runtime.docker.runtime import container_name

        return testinfra.get_host(f"docker://{container_name(running.name, node)}")
    return testinfra.host.Host(NetnsBackend(namespace(running.name, node)))
