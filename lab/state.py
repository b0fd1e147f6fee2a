"""Where a lab keeps its files: one directory per lab, one sub-directory per node.

The directory holds the resolved lab (0600: it carries the PSKs charon needs on a
restart), daemon configs, sockets and logs. It lives outside /run because charon runs
with a private tmpfs on /run.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from lab.errors import LabError
from lab.topology.model import Lab

ROOT = Path(os.environ.get("VPNLAB_STATE", "/var/lib/vpnlab"))
LAB_FILE, META_FILE = "lab.json", "meta.json"


def lab_dir(name: str) -> Path:
    return ROOT / name


def save(lab: Lab, meta: dict) -> Path:
    d = lab_dir(lab.name)
    d.mkdir(parents=True, exist_ok=True)
    d.chmod(0o711)
    path = d / LAB_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(lab.model_dump_json(indent=1, context={"reveal_secrets": True}))
    update_meta(lab.name, meta)
    return d


def update_meta(name: str, changes: dict) -> dict:
    path = lab_dir(name) / META_FILE
    meta = json.loads(path.read_text()) if path.exists() else {}
    meta.update(changes)
    path.write_text(json.dumps(meta, indent=1))
    return meta


def load(name: str) -> tuple[Lab, dict]:
    d = lab_dir(name)
    try:
        lab = Lab.model_validate_json((d / LAB_FILE).read_text())
        meta = json.loads((d / META_FILE).read_text())
    except FileNotFoundError:
        raise LabError(f"no lab named {name!r} is running (no state in {d})") from None
    return lab, meta


def names() -> list[str]:
    return sorted(p.name for p in ROOT.iterdir() if p.is_dir()) if ROOT.exists() else []


def remove(name: str) -> None:
    shutil.rmtree(lab_dir(name), ignore_errors=True)
