"""Node runtimes, by name: network namespaces or Docker containers.

Each runtime module imports its own system library (pyroute2, the Docker SDK) when it is
made, so that choosing one costs nothing for the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Network

from lab.core.errors import LabError
from lab.runtime.base import Runtime
from lab.topology.choices import AUTO, RUNTIMES


def make(kind: str, lab: str, address_plan: Sequence[IPv4Network] = ()) -> Runtime:
    """``address_plan``: the lab's networks, which a runtime's own addressing must avoid."""
    if kind == "netns":
        from lab.runtime.netns import NetnsRuntime

        return NetnsRuntime(lab)
    if kind == "docker":
        from lab.runtime.docker.runtime import DockerRuntime

        return DockerRuntime(lab, address_plan)
    raise LabError(f"unknown runtime {kind!r}; choose one of {', '.join(RUNTIMES)} or {AUTO}")


def choose(requested: str) -> tuple[str, str]:
    """(runtime, why): ``auto`` takes Docker when an engine answers, else namespaces."""
    if requested in RUNTIMES:
        return requested, "asked for"
    if requested != AUTO:
        raise LabError(f"unknown runtime {requested!r}; choose {AUTO}, {', '.join(RUNTIMES)}")
    from lab.runtime.docker.engine import daemon_available

    if daemon_available():
        return "docker", "auto: a Docker engine answers"
    return "netns", "auto: no Docker engine answers, using network namespaces"
