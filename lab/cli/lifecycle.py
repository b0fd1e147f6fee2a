"""Commands that bring labs up, show them and take them down."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from rich.markup import escape

from lab.cli.common import lab_option, main, out, pick_lab
from lab.cli.views import lab_summary, print_status
from lab.core.errors import LabError
from lab.core.shipped import TOPOLOGIES, find_topology, shipped, topology_names
from lab.topology import json_schema, load_lab
from lab.topology.choices import AUTO, DATAPLANES, RUNTIMES
from lab.topology.timers import CONVERGE_TIMEOUT

topology_argument = click.argument("topology", metavar="TOPOLOGY")


def _load(topology: str, name: str | None = None):
    return load_lab(find_topology(topology), name=name)


@main.command()
@topology_argument
def validate(topology: str) -> None:
    """Check a topology; exit 2 naming the field and the rule it breaks.

    TOPOLOGY is a file, or the name of a shipped topology (vpnlab topologies)."""
    lab = _load(topology)
    out.print(f"{find_topology(topology)}: ok — {lab_summary(lab)}", soft_wrap=True)


@main.command()
def topologies() -> None:
    """The topologies shipped with vpnlab, usable by name (vpnlab up tray-bgp-ikev2)."""
    for name in topology_names():
        path = shipped(TOPOLOGIES) / f"{name}.yaml"
        out.print(f"[bold]{name:<20}[/] {lab_summary(load_lab(path))}", highlight=False)


@main.command()
@topology_argument
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("rendered"),
    show_default=True,
)
@click.option("--reveal-secrets", is_flag=True, help="write the real PSKs into swanctl.conf")
def render(topology: str, output: Path, reveal_secrets: bool) -> None:
    """Write every node's strongSwan, FRR (staticd, bgpd) and nftables files."""
    from lab.render import render_lab

    lab = _load(topology)
    written = render_lab(lab, output, reveal_secrets=reveal_secrets)
    for path in written:
        out.print(f"  {path}")
    out.print(f"{len(written)} files for lab {lab.name} in {output}/")


@main.command()
@topology_argument
@click.option("--name", help="lab name (default: the file's name:), to run a second copy")
@click.option(
    "--timeout", default=CONVERGE_TIMEOUT, show_default=True, help="seconds to wait for convergence"
)
@click.option(
    "--keep-on-failure/--no-keep-on-failure",
    default=True,
    show_default=True,
    help="leave a lab that did not converge up for inspection",
)
@click.option(
    "--runtime",
    type=click.Choice([AUTO, *RUNTIMES]),
    default=None,
    help="node runtime (default: the topology's runtime:, else auto = Docker when "
    "an engine answers, else network namespaces)",
)
@click.option(
    "--dataplane",
    type=click.Choice([AUTO, *DATAPLANES]),
    default=None,
    help="IPsec data plane (default: the topology's dataplane:, else auto = the "
    "kernel's ESP where a gateway's kernel has it, else userspace)",
)
def up(
    topology: str,
    name: str | None,
    timeout: float,
    keep_on_failure: bool,
    runtime: str | None,
    dataplane: str | None,
) -> None:
    """Bring a lab up and wait until every tunnel and BGP session has converged.

    TOPOLOGY is a file, or the name of a shipped topology (vpnlab topologies)."""
    from lab.observe.status import collect
    from lab.ops import bringup
    from lab.runtime import choose as choose_runtime

    lab = _load(topology, name).asking(dataplane)
    kind, why = choose_runtime(runtime or lab.runtime)
    out.print(
        f"bringing up lab [bold]{lab.name}[/] from {find_topology(topology)} on the "
        f"{kind} runtime ({why})"
    )
    t0 = time.monotonic()
    with out.status("create nodes") as spinner:

        def progress(phase: str, seconds: float) -> None:
            out.print(f"  [green]✓[/] {phase:<22} {seconds:6.2f}s")
            spinner.update(f"after {phase}")

        def pending(problems: list) -> None:
            first = escape(str(problems[0])) if problems else "done"
            spinner.update(f"waiting for convergence: {len(problems)} pending, e.g. {first}")

        running = bringup.up(
            lab,
            progress=progress,
            pending=pending,
            timeout=timeout,
            keep_on_timeout=keep_on_failure,
            runtime=kind,
        )
    out.print(f"[bold green]converged[/] in {time.monotonic() - t0:.2f}s")
    print_status(collect(running))


@main.command()
@lab_option
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="machine-readable output (shape: README, 'status --json')",
)
def status(lab_name: str | None, as_json: bool) -> None:
    """Tunnels (IKE/CHILD state, proposals, counters, BGP) and nodes (daemons alive)."""
    from lab.observe.status import collect
    from lab.session.handle import RunningLab

    data = collect(RunningLab.attach(pick_lab(lab_name)))
    if as_json:
        click.echo(data.model_dump_json(indent=2))
    else:
        print_status(data)


@main.command(name="exec", context_settings={"ignore_unknown_options": True})
@lab_option
@click.argument("node")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(lab_name: str | None, node: str, command: tuple[str, ...]) -> None:
    """Run COMMAND inside NODE: vpnlab exec app -- ping -c 3 172.16.1.100"""
    from lab.session.handle import RunningLab

    proc = RunningLab.attach(pick_lab(lab_name)).exec(node, list(command))
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    sys.exit(proc.returncode)


@main.command()
@click.argument("name", required=False)
def down(name: str | None) -> None:
    """Stop a lab's daemons and remove its namespaces and state."""
    from lab.session import cleanup
    from lab.session.handle import RunningLab

    name = pick_lab(name, positional=True)
    try:
        RunningLab.attach(name).down()
    except LabError:
        # No readable state (e.g. killed mid-prepare): remove by name, in every runtime.
        cleanup.destroy_lab(name)
    out.print(f"lab {name} is down")


@main.command()
@click.option(
    "--all", "all_", is_flag=True, required=True, help="required: remove every lab's leftovers"
)
def destroy(all_: bool) -> None:
    """Remove every vpnlab namespace, daemon and state directory, even after a crash."""
    from lab.session import cleanup

    removed = cleanup.destroy_all()
    for kind, items in removed.items():
        out.print(f"{kind}: {', '.join(map(str, items)) or 'none'}")


@main.command()
def schema() -> None:
    """Print the topology JSON Schema (for editors)."""
    click.echo(json_schema())
