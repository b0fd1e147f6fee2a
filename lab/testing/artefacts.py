"""Checks on what a run leaves behind (reports, captures, logs)."""

from __future__ import annotations

from pathlib import Path


def files_holding(folder: Path, secrets: list[str]) -> list[Path]:
    """Every file under ``folder`` whose bytes contain one of ``secrets``."""
    wanted = [s.encode() for s in secrets if s]
    files = [f for f in folder.rglob("*") if f.is_file()]
    return [f for f in files if any(s in f.read_bytes() for s in wanted)]
