"""scripts/guest.sh refuses loudly: no command, or no kernel to boot, is an error (never a
silent pass). The guest itself boots in 'setup.sh test', which runs the kernel scenarios."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "guest.sh"


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, env={**os.environ, **env}
    )


def test_no_command_is_a_usage_error() -> None:
    result = _run()
    assert result.returncode == 2 and "usage: bash scripts/guest.sh CMD" in result.stderr


def test_a_kernel_that_is_not_there_fails_naming_it() -> None:
    result = _run("true", VPNLAB_GUEST_KERNEL="/boot/vmlinuz-missing")
    assert result.returncode == 1
    assert "guest: no kernel to boot" in result.stderr
