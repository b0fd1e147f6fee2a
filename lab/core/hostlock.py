"""One holder at a time among this machine's processes (an image build, a network booking)."""

from __future__ import annotations

import fcntl
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_DIR = Path("/run/lock")


@contextmanager
def host_lock(name: str) -> Iterator[None]:
    """Hold ``/run/lock/vpnlab-<name>.lock`` (or in the temp dir, where there is no
    /run/lock) for the block."""
    directory = LOCK_DIR if LOCK_DIR.is_dir() else Path(tempfile.gettempdir())
    with open(directory / f"vpnlab-{name}.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
