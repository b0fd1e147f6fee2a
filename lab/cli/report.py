"""``vpnlab report``: a running lab as one HTML file (diagram, timeline plot, tunnels,
events, logs)."""

from __future__ import annotations

from pathlib import Path

import click

from lab.cli.common import lab_option, main, out, pick_lab
from lab.core.errors import InputError


@main.command()
@lab_option
@click.argument("out_dir", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--screenshot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="also write FILE.png as headless Chromium shows the report",
)
def report(lab_name: str | None, out_dir: Path, screenshot: Path | None) -> None:
    """Write DIR/report.html for a running lab (self-contained: opens from disk) with its
    logs under DIR/labs/. No key is in any of it."""
    from lab.report import session
    from lab.session.handle import RunningLab

    if screenshot and screenshot.suffix != ".png":
        raise InputError("--screenshot", f"{screenshot.name}: must end in .png")
    running = RunningLab.attach(pick_lab(lab_name))
    path = session.write(running, out_dir)
    out.print(f"{path}: lab {running.name}")
    if screenshot:
        from lab.report import browser

        said = browser.screenshot(path, screenshot)
        out.print(f"{screenshot}: as Chromium shows it" + (f"; console: {said}" if said else ""))
