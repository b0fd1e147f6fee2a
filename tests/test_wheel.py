"""The built wheel works on its own: shipped data inside the package, found once installed.

A source checkout finds topologies/ and images/ at the repository's top level, so the
other tests cannot see a wheel that forgot them (pyproject's force-include) or code that
only works from a checkout. Here the wheel is built, its file list checked, and it is
installed into a fresh venv outside the checkout, then used from there.

The new venv gets no copies of the dependencies: a .pth file appends this venv's
site-packages after its own (``venv --system-site-packages`` would give the system
Python's packages, which lack pydantic and the rest). A .pth line is a plain path, so the
editable install's own .pth there, which points at the checkout, is not followed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOPOLOGY = "tray-bgp-ikev2"
LAB_NAME = "tray-bgp-v2"  # the name: inside topologies/tray-bgp-ikev2.yaml
BUILD_TIMEOUT = 600

# pip's words when the build backend cannot be had (no index, no network).
NO_BACKEND = re.compile(r"(No matching distribution found|Could not find a version).*hatchling")


@dataclass(frozen=True)
class Installed:
    venv: Path
    python: Path
    bin: Path
    env: dict[str, str]
    cwd: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args), cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=120
        )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built once per module the way a release would be (isolated build)."""
    out = tmp_path_factory.mktemp("wheel")
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(out), str(ROOT)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.skip(f"building the wheel took over {BUILD_TIMEOUT}s (package index unreachable?)")
    log = proc.stdout + proc.stderr
    if proc.returncode != 0 and NO_BACKEND.search(log):
        pytest.skip("cannot build the wheel: pip cannot fetch the build backend hatchling")
    assert proc.returncode == 0, f"pip wheel failed:\n{log}"
    (built,) = out.glob("vpnlab-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The wheel installed into a new venv outside the checkout, run from outside it."""
    base = tmp_path_factory.mktemp("installed")
    assert not base.is_relative_to(ROOT), "the venv must live outside the checkout"
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python)]
    proc = subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", str(wheel)], capture_output=True, text=True
    )
    assert proc.returncode == 0, f"installing the wheel failed:\n{proc.stdout}{proc.stderr}"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(purelib) / "_vpnlab_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV")
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    cwd = base / "elsewhere"
    cwd.mkdir()
    return Installed(venv=venv, python=python, bin=venv / "bin", env=env, cwd=cwd)


def test_wheel_carries_the_shipped_data(wheel: Path):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {"lab/_data/images/Dockerfile"}
    expected |= {f"lab/_data/topologies/{p.name}" for p in (ROOT / "topologies").glob("*.yaml")}
    expected |= {
        f"lab/_data/{p.relative_to(ROOT).as_posix()}"
        for p in (ROOT / "profiles").rglob("*")
        if p.is_file()
    }
    assert "lab/_data/profiles/templates/strongswan/swanctl.conf.j2" in expected
    expected |= {
        f"lab/_data/{p.relative_to(ROOT).as_posix()}"
        for p in (ROOT / "exercises").rglob("*")
        if p.is_file()
    }
    assert "lab/_data/exercises/psk-mismatch/exercise.yaml" in expected
    expected |= {
        f"lab/_data/{p.relative_to(ROOT).as_posix()}"
        for p in (ROOT / "samples").rglob("*")
        if p.is_file()
    }
    assert "lab/_data/samples/aws/vpn-0a1b2c3d4e5f60718.xml" in expected
    expected |= {
        p.relative_to(ROOT).as_posix()
        for templates in ("render", "report")
        for p in (ROOT / "lab" / templates / "templates").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert "lab/report/templates/report.html.j2" in expected
    assert f"lab/_data/topologies/{TOPOLOGY}.yaml" in expected
    # swanctl.conf is written by lab/render/swanctl.py; strongswan.conf is the template
    assert "lab/render/templates/strongswan/strongswan.conf.j2" in expected
    assert not expected - names, f"missing from the wheel: {sorted(expected - names)}"
    top_level = sorted(
        n
        for n in names
        if n.split("/")[0] in ("topologies", "images", "profiles", "exercises", "samples")
    )
    assert not top_level, f"shipped data at the wheel's top level: {top_level}"


def test_installed_package_finds_its_data(installed: Installed):
    script = (
        "import lab\n"
        "from lab.core.shipped import find_topology, shipped\n"
        "from lab.topology import load_lab\n"
        f"lab_ = load_lab(find_topology({TOPOLOGY!r}))\n"
        "print(lab.__file__)\n"
        "print(lab_.name)\n"
        "print((shipped('images') / 'Dockerfile').is_file())\n"
        "print(shipped('images'))\n"
    )
    proc = installed.run(str(installed.python), "-c", script)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    package, name, has_dockerfile, images = proc.stdout.splitlines()
    venv = installed.venv.resolve()
    assert Path(package).resolve().is_relative_to(venv), f"lab imported from {package}"
    assert (name, has_dockerfile) == (LAB_NAME, "True")
    assert Path(images).resolve().is_relative_to(venv), f"images found at {images}"


def test_installed_cli_validates_by_name(installed: Installed):
    proc = installed.run(str(installed.bin / "vpnlab"), "validate", TOPOLOGY)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert LAB_NAME in proc.stdout


def test_installed_cli_lists_topologies(installed: Installed):
    proc = installed.run(str(installed.bin / "vpnlab"), "topologies")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert TOPOLOGY in proc.stdout.split()


def test_installed_package_renders_a_form_from_its_own_profiles(installed: Installed, tmp_path):
    """Profiles, the shipped templates and the example forms come from the wheel."""
    form = installed.venv / "form.yaml"
    proc = installed.run(
        str(installed.python),
        "-c",
        "from lab.core.shipped import shipped\n"
        "print(shipped('profiles') / 'examples' / 'tray-bgp.yaml')\n",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    example = Path(proc.stdout.strip())
    assert example.resolve().is_relative_to(installed.venv.resolve())
    form.write_text(example.read_text())
    out = tmp_path / "bundle"
    proc = installed.run(str(installed.bin / "vpnlab"), "form", "render", str(form), "-o", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "router bgp 65001" in (out / "customer" / "frr.conf").read_text()


def test_installed_cli_lists_and_validates_its_exercises(installed: Installed):
    """The exercises (and the shipped topologies they name) come from the wheel."""
    proc = installed.run(str(installed.bin / "vpnlab"), "exercise", "list", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {row["name"]: row for row in json.loads(proc.stdout)}
    shipped_names = {p.parent.name for p in (ROOT / "exercises").glob("*/exercise.yaml")}
    assert set(rows) == shipped_names
    for row in rows.values():
        assert Path(row["folder"]).resolve().is_relative_to(installed.venv.resolve()), row
    proc = installed.run(str(installed.bin / "vpnlab"), "exercise", "validate", "psk-mismatch")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_installed_cli_imports_a_shipped_sample(installed: Installed, tmp_path):
    """The import samples and the aws profile come from the wheel; no key on stdout."""
    proc = installed.run(
        str(installed.python),
        "-c",
        "from lab.core.shipped import shipped\n"
        "print(shipped('samples') / 'aws' / 'vpn-0a1b2c3d4e5f60718.xml')\n",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    sample = Path(proc.stdout.strip())
    assert sample.resolve().is_relative_to(installed.venv.resolve())
    out = tmp_path / "lab.yaml"
    proc = installed.run(
        str(installed.bin / "vpnlab"), "import", "aws", str(sample), "-o", str(out)
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "provider: aws" in out.read_text()
    assert "sampleTunnelOne" not in proc.stdout + proc.stderr + out.read_text()
