"""A lab's state on disk: the resolved lab and what has happened to it since ``up``.

One directory per lab (``lab.json``: the resolved lab, 0600 since it carries the PSKs
charon needs on a restart; ``state.json``: runtime, phase, data planes, faults; node
sub-directories with configs, sockets and logs). Several ``vpnlab`` processes act on one
lab at once, so every change of ``state.json`` is read, modified and written under the
lab's lock file, and written atomically (a reader never sees half a file).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from lab.core.errors import LabError
from lab.core.paths import STATE_ROOT, lab_dir
from lab.topology.model import Lab

LAB_FILE, STATE_FILE, LOCK_FILE = "lab.json", "state.json", ".lock"

__all__ = [
    "FaultRecord",
    "LabState",
    "changing",
    "create",
    "lab_dir",
    "load",
    "locked",
    "names",
    "read",
    "remove",
]


class FaultRecord(BaseModel):
    """A fault in force: what it is, since when, and what undoing it needs."""

    id: int
    kind: str
    params: dict
    started: float  # epoch seconds
    description: str
    undo: dict = {}

    def age(self, now: float | None = None) -> float:
        return (now or time.time()) - self.started


class LabState(BaseModel):
    runtime: str
    started: float
    pid: int
    phase: str = "prepare"
    converged: float | None = None
    dataplane: dict[str, str] = Field(default_factory=dict)  # gateway -> kernel | userspace
    faults: list[FaultRecord] = Field(default_factory=list)
    recorder: int | None = None  # pid of the lab's event recorder


# A process may take a lab's lock again while it holds it (a fault's undo restarting charon):
# the file lock is taken once per process, a re-entrant lock orders its threads.
_guard = threading.Lock()
_threads: dict[str, threading.RLock] = {}
_held: dict[str, tuple[int, object]] = {}  # lab -> (depth, open lock file)


@contextmanager
def locked(name: str) -> Iterator[None]:
    """Hold lab ``name``'s lock (across processes) for the block."""
    with _guard:
        rlock = _threads.setdefault(name, threading.RLock())
    with rlock:
        depth, handle = _held.get(name, (0, None))
        if depth == 0:
            lab_dir(name).mkdir(parents=True, exist_ok=True)
            handle = open(lab_dir(name) / LOCK_FILE, "a")  # noqa: SIM115 - held across the block
            fcntl.flock(handle, fcntl.LOCK_EX)
        _held[name] = (depth + 1, handle)
        try:
            yield
        finally:
            depth, handle = _held[name]
            if depth == 1:
                del _held[name]
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
            else:
                _held[name] = (depth - 1, handle)


def _write(path: Path, text: str, mode: int = 0o600) -> None:
    """Write a file whole or not at all: a temporary file beside it, renamed over it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def create(lab: Lab, state: LabState) -> Path:
    d = lab_dir(lab.name)
    d.mkdir(parents=True, exist_ok=True)
    d.chmod(0o711)
    with locked(lab.name):
        _write(d / LAB_FILE, lab.model_dump_json(indent=1, context={"reveal_secrets": True}))
        _write(d / STATE_FILE, state.model_dump_json(indent=1))
    return d


def save_lab(lab: Lab) -> None:
    with locked(lab.name):
        _write(
            lab_dir(lab.name) / LAB_FILE,
            lab.model_dump_json(indent=1, context={"reveal_secrets": True}),
        )


def read(name: str) -> LabState:
    path = lab_dir(name) / STATE_FILE
    try:
        return LabState.model_validate_json(path.read_text())
    except FileNotFoundError:
        raise LabError(f"no lab named {name!r} is running (no state in {path.parent})") from None
    except ValidationError as exc:
        raise LabError(
            f"{path}: unreadable lab state ({exc.errors()[0]['msg']}); "
            f"'vpnlab destroy --all' removes it"
        ) from None


def load(name: str) -> tuple[Lab, LabState]:
    state = read(name)
    lab = Lab.model_validate_json((lab_dir(name) / LAB_FILE).read_text())
    return lab, state


@contextmanager
def changing(name: str) -> Iterator[LabState]:
    """Read the lab's state, let the block change it, write it back; under the lab's lock.
    Not to be nested for one lab (the inner change would be overwritten)."""
    with locked(name):
        state = read(name)
        yield state
        _write(lab_dir(name) / STATE_FILE, state.model_dump_json(indent=1))


def names() -> list[str]:
    root = STATE_ROOT
    if not root.exists():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def remove(name: str) -> None:
    shutil.rmtree(lab_dir(name), ignore_errors=True)
