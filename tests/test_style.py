"""The code base stays ruff clean and ruff formatted (the rules live in pyproject.toml)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CODE = ["lab", "tests", "scenarios", "bench"]


def _ruff(*args: str) -> subprocess.CompletedProcess:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    return subprocess.run([ruff, *args, *CODE], cwd=ROOT, capture_output=True, text=True)


def test_ruff_check_clean():
    proc = _ruff("check")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_format_clean():
    proc = _ruff("format", "--check")
    assert proc.returncode == 0, "run 'ruff format': " + proc.stdout + proc.stderr


def test_test_files_have_unique_basenames():
    """pytest imports tests/ and scenarios/ files by basename: a clash stops collection."""
    files = [p.name for d in ("tests", "scenarios") for p in (ROOT / d).glob("test_*.py")]
    assert sorted({n for n in files if files.count(n) > 1}) == []
