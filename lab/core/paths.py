"""Where labs keep their files on this machine: one directory per lab (``VPNLAB_STATE``
moves the root). Outside /run, because charon runs with a private tmpfs on /run."""

from __future__ import annotations

import os
from pathlib import Path

STATE_ROOT = Path(os.environ.get("VPNLAB_STATE", "/var/lib/vpnlab"))


def lab_dir(name: str) -> Path:
    return STATE_ROOT / name
