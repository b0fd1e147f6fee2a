"""A report as a browser shows it: headless Chromium (Debian's ``chromium``) loads the file
from disk, writes a screenshot, and tells what the page logged to its console."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from lab.core.errors import LabError

# Chromium logs each console message (console.error, uncaught exceptions, failed loads)
# to stderr as '...:INFO:CONSOLE:<line>] "<message>", source: <url> (<line>)'.
CONSOLE = re.compile(r":CONSOLE(?:\(\d+\)|:\d+)\] (.*)")
LOAD_TIMEOUT = 60


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    raise LabError("no chromium on PATH (Debian: apt install chromium; setup.sh installs it)")


def screenshot(page: Path, png: Path, width: int = 1400, height: int = 1800) -> list[str]:
    """Load ``page`` in headless Chromium and write ``png``; return the console messages."""
    argv = [
        chromium(),
        "--headless=new",
        "--no-sandbox",  # root in a container: the sandbox needs user namespaces it lacks
        "--disable-gpu",
        "--no-first-run",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
        f"--window-size={width},{height}",
        f"--screenshot={png.resolve()}",
        page.resolve().as_uri(),
    ]
    png.unlink(missing_ok=True)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=LOAD_TIMEOUT)
    if not png.is_file():
        said = done.stderr[-800:]
        raise LabError(f"chromium wrote no screenshot (exit {done.returncode}): {said}")
    return [m[1] for line in done.stderr.splitlines() if (m := CONSOLE.search(line))]
