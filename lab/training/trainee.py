"""A trainee's place: the exercise they are on, its lab and how many hints they have seen,
kept under the state root's work area (``<state>/.work/training/<trainee>/``, which
``vpnlab destroy --all`` removes) beside the customer's files as the break and the fix
write them (keys included: readable by root only)."""

from __future__ import annotations

import fcntl
import getpass
import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel

from lab.core import paths
from lab.core.errors import InputError, LabError

TRAINEE = r"^[a-z][a-z0-9-]{0,11}$"
TRAINEE_RULE = (
    "trainee names are lowercase letters, digits and '-', start with a letter, "
    "at most 12 characters"
)
STATE_FILE = "trainee.json"


class TraineeState(BaseModel):
    trainee: str
    exercise: str
    folder: str  # where the exercise was found when it started
    lab: str
    runtime: str
    started: float
    hints_shown: int = 0


def root() -> Path:
    return paths.WORK_ROOT / "training"


def directory(trainee: str) -> Path:
    return root() / trainee


def default_trainee() -> str:
    """``VPNLAB_TRAINEE``, else the login name if it makes a valid trainee name."""
    name = os.environ.get("VPNLAB_TRAINEE") or getpass.getuser()
    return name if re.match(TRAINEE, name or "") else "trainee"


def check_name(trainee: str) -> str:
    if not re.match(TRAINEE, trainee):
        raise InputError("--as", TRAINEE_RULE)
    return trainee


def lab_name(exercise: str, trainee: str) -> str:
    """One lab per (exercise, trainee), named after both; shortened with a hash of the two
    when that is longer than a lab name may be (24 characters)."""
    name = f"{trainee}-{exercise}"
    if len(name) <= 24:
        return name
    digest = hashlib.sha1(f"{trainee}/{exercise}".encode()).hexdigest()[:4]
    return f"{name[:19].rstrip('-')}-{digest}"


def write(path: Path, text: str) -> None:
    """Whole or not at all, readable by root only (customer files carry the keys)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read(trainee: str) -> TraineeState:
    path = directory(trainee) / STATE_FILE
    try:
        return TraineeState.model_validate_json(path.read_text())
    except FileNotFoundError:
        raise LabError(
            f"trainee {trainee!r} is on no exercise: vpnlab exercise start NAME --as {trainee}"
        ) from None


def save(state: TraineeState) -> None:
    write(directory(state.trainee) / STATE_FILE, state.model_dump_json(indent=1))


@contextmanager
def changing(trainee: str) -> Iterator[TraineeState]:
    """Read, change and write a trainee's state under their lock (two shells, one trainee)."""
    d = directory(trainee)
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(d / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = read(trainee)
        yield state
        save(state)


def forget(trainee: str) -> None:
    """The trainee's state and customer files (keys included) gone with their lab."""
    shutil.rmtree(directory(trainee), ignore_errors=True)


def trainees() -> list[TraineeState]:
    if not root().is_dir():
        return []
    return [read(d.name) for d in sorted(root().iterdir()) if (d / STATE_FILE).is_file()]


def new_state(trainee: str, exercise: str, folder: Path, lab: str, runtime: str) -> TraineeState:
    return TraineeState(
        trainee=trainee,
        exercise=exercise,
        folder=str(folder),
        lab=lab,
        runtime=runtime,
        started=time.time(),
    )
