"""Node runtimes, by name: network namespaces or Docker containers."""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Network

from lab.errors import LabError
from lab.runtime.base import Runtime

KINDS = ("netns", "docker")


def make(kind: str, lab: str, address_plan: Sequence[IPv4Network] = ()) -> Runtime:
    """``address_plan``: the lab's networks, which a runtime's own addressing must avoid."""
    if kind == "netns":
        from lab.runtime.netns import NetnsRuntime

        return NetnsRuntime(lab)
    if kind == "docker":
        from lab.runtime.docker import DockerRuntime

        return DockerRuntime(lab, address_plan)
    raise LabError(f"unknown runtime {kind!r}; choose one of {', '.join(KINDS)} or auto")


def choose(requested: str) -> tuple[str, str]:
    """(runtime, why): ``auto`` takes Docker when an engine answers, else namespaces."""
    if requested in KINDS:
        return requested, "asked for"
    if requested != "auto":
        raise LabError(f"unknown runtime {requested!r}; choose auto, {', '.join(KINDS)}")
    from lab import images

    if images.daemon_available():
        return "docker", "auto: a Docker engine answers"
    return "netns", "auto: no Docker engine answers, using network namespaces"
