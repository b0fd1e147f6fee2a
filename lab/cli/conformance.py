"""``vpnlab conformance``: forms and templates through a real lab, to a verdict for CI."""

from __future__ import annotations

import functools
import re
import sys
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from lab.cli.common import main, out
from lab.cli.forms import templates_option
from lab.core.errors import InputError
from lab.topology.choices import AUTO, RUNTIMES

VERDICT_STYLE = {"pass": "green", "fail": "bold red", "skip": "dim"}


@main.command()
@click.argument("path", metavar="FORM|DIR", type=click.Path(path_type=Path))
@templates_option
@click.option(
    "--runtime",
    type=click.Choice([AUTO, *RUNTIMES]),
    default=AUTO,
    show_default=True,
    help="node runtime (auto: Docker when an engine answers, else namespaces)",
)
@click.option("--keep", is_flag=True, help="leave a failed form's lab up for inspection")
@click.option(
    "--junit",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="write a JUnit XML report here",
)
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="write DIR/report.html: every check, and each form's lab (diagram, timeline, logs)",
)
@click.option("--jobs", "-j", default=1, show_default=True, help="labs side by side")
@click.option("--shard", default=None, metavar="I/N", help="run only the I-th of N slices")
@click.option(
    "--prefix",
    default="cf",
    show_default=True,
    help="lab names are PREFIX-<form>: runs sharing a machine need different ones",
)
def conformance(
    path: Path,
    templates: Path | None,
    runtime: str,
    keep: bool,
    junit: Path | None,
    report_dir: Path | None,
    jobs: int,
    shard: str | None,
    prefix: str,
) -> None:
    """Bring up the provider side of each FORM's profile and a customer gateway running
    exactly the rendered templates; check tunnels, negotiated proposals, routes, services,
    failover and NAT egress. Exit 0 only when every check of every form passes, 1 when a
    check fails, 2 when a form or template is refused."""
    from lab.conformance import batch
    from lab.conformance import junit as junit_xml
    from lab.runtime import choose

    forms = batch.forms_in(path)
    if shard:
        i, n = batch.parse_shard(shard)
        forms = batch.shard(forms, i, n)
        out.print(f"shard {i}/{n}: {len(forms)} form(s)")
    kind, why = choose(runtime)
    out.print(f"{len(forms)} form(s) on the {kind} runtime ({why}), {jobs} at a time")
    if not re.fullmatch(r"[a-z][a-z0-9]{0,7}", prefix):
        raise InputError("--prefix", "1-8 lowercase letters and digits, starting with a letter")
    before_down = None
    if report_dir:
        from lab.report import conformance_run

        report_dir = report_dir.resolve()
        before_down = functools.partial(conformance_run.record_into, report_dir)
    reports = batch.run_all(
        forms,
        templates,
        runtime=kind,
        keep=keep,
        jobs=jobs,
        prefix=prefix,
        done=_show,
        before_down=before_down,
    )
    if junit:
        junit_xml.write(reports, junit)
        out.print(f"JUnit report: {junit}")
    if report_dir:
        out.print(f"HTML report: {conformance_run.write(reports, report_dir, kind)}")
    passed = sum(r.passed for r in reports)
    out.print(f"[bold]{passed}/{len(reports)} form(s) conform[/]")
    if any(r.refused for r in reports):
        sys.exit(2)
    if passed < len(reports):
        sys.exit(1)


def _show(report) -> None:
    head = "[green]PASS[/]" if report.passed else "[bold red]FAIL[/]"
    out.print(
        f"\n{head} {escape(report.form)} ({report.profile or '?'} profile, lab {report.lab}, "
        f"{report.seconds:.1f}s)",
        highlight=False,
    )
    for w in report.warnings:
        out.print(f"  [yellow]warning[/]: {escape(str(w))}", highlight=False, soft_wrap=True)
    if report.error:
        out.print(f"  [bold red]error[/]: {escape(report.error)}", highlight=False, soft_wrap=True)
    if not report.results:
        return
    table = Table(show_lines=False, pad_edge=False)
    for col in ("check", "expected", "seen", "verdict"):
        table.add_column(col, overflow="fold")
    for r in report.results:
        verdict = f"[{VERDICT_STYLE[r.verdict]}]{r.verdict}[/]"
        seen = escape(r.seen) + (f"\n[italic]why: {escape(r.why)}[/]" if r.why else "")
        table.add_row(escape(r.name), escape(r.expected), seen, verdict)
    out.print(table)


@main.command("junit-merge")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
def junit_merge(inputs: tuple[Path, ...], output: Path) -> None:
    """Merge JUnit files (one per shard) into one."""
    from lab.conformance.junit import merge

    xml = merge(list(inputs), output)
    out.print(f"{output}: {len(list(xml))} suite(s) from {len(inputs)} file(s)")
