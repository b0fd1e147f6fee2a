"""Remove what any vpnlab lab left behind, even after a crash or a SIGKILLed harness.

Everything vpnlab makes carries its name: namespaces ``vpnlab.*``, state under the state
root, daemons whose command line or config points into that root.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from lab.core.paths import STATE_ROOT, WORK_ROOT
from lab.runtime.netns import destroy_namespaces, kill, lab_namespaces
from lab.session import state


def stray_daemons(root: Path | None = None) -> list[int]:
    """Processes started for a lab (by config path) that are still alive anywhere."""
    marker = str(root or STATE_ROOT).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes() if b"charon" in cmdline else b""
        except OSError:
            continue
        if marker in cmdline or marker in environ:
            found.append(int(entry.name))
    return found


def destroy_all() -> dict[str, list]:
    """Tear down every lab; return what was removed."""
    namespaces = lab_namespaces()
    destroy_namespaces(namespaces)
    killed = stray_daemons()
    kill(killed)
    docker = _docker_leftovers()
    labs = state.names()
    for name in labs:
        state.remove(name)
    work = [str(p) for p in WORK_ROOT.iterdir()] if WORK_ROOT.is_dir() else []
    shutil.rmtree(WORK_ROOT, ignore_errors=True)
    return {"namespaces": namespaces, "processes": killed, **docker, "state": labs + work}


def leftovers(name: str) -> list[str]:
    """Whatever of lab ``name`` still exists: namespaces, containers, networks, state."""
    found = lab_namespaces(name)
    from lab.runtime.docker.engine import LABEL, answering_client

    docker = answering_client()
    if docker is not None:
        selector = {"label": f"{LABEL}.lab={name}"}
        found += [c.name for c in docker.containers.list(all=True, filters=selector)]
        found += [n.name for n in docker.networks.list(filters=selector)]
    if name in state.names():
        found.append(str(state.lab_dir(name)))
    return found


def destroy_lab(name: str) -> None:
    """One lab's leftovers, by name alone, whichever runtime made them."""
    destroy_namespaces(lab_namespaces(name))
    _docker_leftovers(name)
    state.remove(name)
    for work in WORK_ROOT.glob(f"*/{name}"):
        shutil.rmtree(work, ignore_errors=True)


def _docker_leftovers(lab: str | None = None) -> dict[str, list[str]]:
    """Containers and networks labelled vpnlab=1 (of one lab, or all), when Docker answers."""
    from lab.runtime.docker.engine import LABEL, answering_client
    from lab.runtime.docker.runtime import destroy_labelled

    docker = answering_client()
    if docker is None:
        return {}
    return destroy_labelled(docker, {LABEL: "1", **({f"{LABEL}.lab": lab} if lab else {})})
