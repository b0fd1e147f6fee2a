"""`vpnlab exercise ...`: break/fix training, one trainee's exercise at a time."""

from __future__ import annotations

import json
import sys

import click
from rich.markup import escape

from lab.cli.common import main, out
from lab.topology.choices import AUTO, RUNTIMES


def _trainee(value: str | None) -> str:
    from lab.training.trainee import check_name, default_trainee

    return check_name(value) if value else default_trainee()


as_option = click.option(
    "--as",
    "who",
    metavar="TRAINEE",
    help="whose exercise (default: $VPNLAB_TRAINEE, else your login name)",
)


@main.group()
def exercise() -> None:
    """Break/fix exercises: a broken lab, the customer's complaint, hints and checks."""


@exercise.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def list_(as_json: bool) -> None:
    """The exercises (yours in $VPNLAB_EXERCISES first, then the shipped ones)."""
    from lab.training.exercise import all_exercises

    found = all_exercises()
    if as_json:
        rows = [
            {
                "name": e.name,
                "title": e.title,
                "folder": str(e.folder),
                "topology": e.lab.source,
                "customer": e.customer,
                "hints": len(e.hints),
                "checks": [c.label for c in e.checks],
            }
            for e in found
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    for e in found:
        out.print(f"[bold]{e.name:<18}[/] {escape(e.title)}", highlight=False)


@exercise.command()
@click.argument("folder")
def validate(folder: str) -> None:
    """Check an exercise folder (or name); exit 2 naming the file, field and rule."""
    from lab.training.exercise import load

    e = load(folder)
    out.print(
        f"{e.folder}: ok — {len(e.hints)} hints, {len(e.checks)} checks, customer {e.customer}",
        highlight=False,
    )


@exercise.command()
@click.argument("name")
@as_option
@click.option(
    "--runtime",
    type=click.Choice([AUTO, *RUNTIMES]),
    default=AUTO,
    show_default=True,
    help="node runtime (auto: Docker when an engine answers, else network namespaces)",
)
def start(name: str, who: str | None, runtime: str) -> None:
    """Bring the exercise's broken lab up and show the customer's complaint."""
    from lab.training import trainer

    trainee = _trainee(who)
    with out.status(f"bringing up {name} for {trainee}") as spinner:

        def progress(phase: str, seconds: float) -> None:
            spinner.update(f"after {phase} ({seconds:.1f}s)")

        c = trainer.start(name, trainee, runtime, progress)
    out.print(f"[bold]{escape(c.exercise.title)}[/] — lab {c.running.name}\n", highlight=False)
    out.print(escape(c.exercise.description), highlight=False)
    out.print("\n" + escape(trainer.workflow(c)), highlight=False, soft_wrap=True)


@exercise.command()
@as_option
def hint(who: str | None) -> None:
    """Reveal the next hint."""
    from lab.training import trainer

    number, total, text = trainer.hint(_trainee(who))
    if text is None:
        out.print(f"no more hints (all {total} shown)")
    else:
        out.print(f"hint {number}/{total}: {escape(text)}", highlight=False, soft_wrap=True)


@exercise.command()
@as_option
@click.option(
    "--wait",
    type=float,
    default=20.0,
    show_default=True,
    help="seconds to let a fix take effect before failing checks are reported",
)
def check(who: str | None, wait: float) -> None:
    """Check the fix against the live lab; exit 0 only when every check passes."""
    from lab.training import trainer

    results = trainer.check(_trainee(who), wait)
    for r in results:
        mark = {"pass": "[green]✓[/]", "fail": "[red]✗[/]"}.get(r.verdict, "[yellow]-[/]")
        out.print(f"{mark} {escape(r.name)}: {escape(r.seen)}", highlight=False, soft_wrap=True)
    failing = [r for r in results if not r.passed]
    if failing:
        out.print(f"[red]{len(failing)} of {len(results)} checks do not pass yet[/]")
        sys.exit(1)
    out.print("[bold green]fixed[/]: every check passes")


@exercise.command()
@as_option
def reset(who: str | None) -> None:
    """Put the break back (the customer's broken files reloaded, firewall and faults)."""
    from lab.training import trainer

    c = trainer.reset(_trainee(who))
    out.print(f"{c.exercise.name}: the break is back in lab {c.running.name}")


@exercise.command()
@as_option
def solution(who: str | None) -> None:
    """Apply the reference fix (for instructors and tests)."""
    from lab.training import trainer

    c = trainer.solution(_trainee(who))
    out.print(
        f"{c.exercise.name}: reference fix applied on {c.exercise.customer} in lab "
        f"{c.running.name}; 'vpnlab exercise check' confirms it"
    )


@exercise.command()
@as_option
def stop(who: str | None) -> None:
    """Take the trainee's lab down."""
    from lab.training import trainer

    trainee = _trainee(who)
    lab = trainer.stop(trainee)
    out.print(f"{trainee}: lab {lab} is down")


@exercise.command()
def trainees() -> None:
    """Every trainee's current exercise, lab and hints seen."""
    from lab.training.trainee import trainees as all_trainees

    for t in all_trainees():
        out.print(f"{t.trainee:<12} {t.exercise:<18} lab {t.lab:<24} hints {t.hints_shown}")
