"""Where labs keep their files on this machine: one directory per lab (``VPNLAB_STATE``
moves the root). Outside /run, because charon runs with a private tmpfs on /run."""

from __future__ import annotations

import os
from pathlib import Path

STATE_ROOT = Path(os.environ.get("VPNLAB_STATE", "/var/lib/vpnlab"))
# Files a run makes before its lab exists (a conformance run's topology and customer
# bundle, keys included): beside the labs, never taken for one, removed by destroy --all.
WORK_ROOT = STATE_ROOT / ".work"


def lab_dir(name: str) -> Path:
    return STATE_ROOT / name
