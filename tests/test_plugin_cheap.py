"""Importing the light entry points must not load the engine's system libraries.

pytest loads ``lab.testing.plugin`` into every run in the environment, topologies are
loaded and validated where no lab ever runs (an editor, CI), and ``vpnlab --help`` or
``vpnlab validate`` should neither pay for nor need pyroute2, vici or the Docker SDK:
those belong inside the fixtures and commands that drive a lab.

Each check runs in a fresh interpreter, since this one has imported who knows what.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("pyroute2", "vici", "docker")

CHECK = (
    "import sys, {module}; "
    "bad = {heavy} & {{m.split('.')[0] for m in sys.modules}}; "
    "print(sorted(bad)); sys.exit(1 if bad else 0)"
)

# Prints, for each heavy library, the chain of modules that imported it first.
CHAIN = """
import sys

HEAVY = {heavy}

class Spy:
    def find_spec(self, name, path=None, target=None):
        if name in HEAVY:
            chain, frame = [], sys._getframe(1)
            while frame is not None:
                if frame.f_code.co_name == "<module>":
                    chain.append(frame.f_globals.get("__name__", "?"))
                frame = frame.f_back
            print(" -> ".join([*reversed(chain[:-1]), name]))
        return None

sys.meta_path.insert(0, Spy())
import {module}
"""


def import_chains(module: str) -> str:
    """Who imported each heavy library when ``module`` was imported, for the failure
    message."""
    proc = subprocess.run(
        [sys.executable, "-c", CHAIN.format(heavy=set(HEAVY), module=module)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "module",
    [
        "lab.testing.plugin",
        "lab.topology",
        "lab.cli",
    ],
)
def test_import_is_cheap(module: str):
    proc = subprocess.run(
        [sys.executable, "-c", CHECK.format(module=module, heavy=set(HEAVY))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, (
        f"importing {module} loads {proc.stdout.strip()} {proc.stderr}\n"
        f"import chains:\n{import_chains(module)}"
    )


def test_chain_spy_names_the_importer():
    """The failure message's chain finder works: lab.runtime.netns imports pyroute2."""
    assert "lab.runtime.netns -> pyroute2" in import_chains("lab.runtime.netns")
