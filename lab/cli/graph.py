"""``vpnlab graph``: the topology drawn, from a file or a running lab."""

from __future__ import annotations

from pathlib import Path

import click

from lab.cli.common import main, out, pick_lab
from lab.core.errors import InputError
from lab.core.shipped import find_topology


@main.command()
@click.argument("topology", required=False, metavar="[TOPOLOGY]")
@click.option("--lab", "-l", "lab_name", help="a running lab: tunnels coloured by their state")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="FILE.svg, FILE.png, FILE.mmd (Mermaid) or FILE.dot",
)
def graph(topology: str | None, lab_name: str | None, output: Path) -> None:
    """Draw a topology file, or a running lab (--lab, or the only lab up when no TOPOLOGY
    is given) with each tunnel green (up), amber (partly) or red (down)."""
    from lab.report.graph import write

    if topology and lab_name:
        raise InputError("--lab", "give a TOPOLOGY file or --lab, not both")
    status = None
    if topology:
        from lab.topology import load_lab

        lab = load_lab(find_topology(topology))
    else:
        from lab.observe.status import collect
        from lab.session.handle import RunningLab

        running = RunningLab.attach(pick_lab(lab_name))
        lab, status = running.lab, collect(running)
    write(lab, output, status)
    out.print(f"{output}: {lab.name}" + (" (live tunnel states)" if status else ""))
