"""Commands for the provider's side: profiles, the customer setup form, its bundle."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.markup import escape

from lab.cli.common import err, main, out, show_error

templates_option = click.option(
    "--templates",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="directory of customer templates (*.j2); default: the profile's shipped set",
)


@main.command()
def profiles() -> None:
    """The provider profiles (shipped, and from $VPNLAB_PROFILES)."""
    from lab.topology.profiles import load_profile, profile_names

    for name in profile_names():
        p = load_profile(name)
        routing = "/".join(p.routing)
        out.print(
            f"[bold]{name:<10}[/] {p.tunnels.min}-{p.tunnels.max} tunnels, {routing}, "
            f"IKEv{'/'.join(map(str, p.ike_versions))}: {escape(p.description)}",
            highlight=False,
        )


@main.group()
def form() -> None:
    """The customer's VPN setup form: write a blank one, check one, render its bundle."""


@form.command("new")
@click.argument("provider")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
def form_new(provider: str, output: Path | None) -> None:
    """Write a blank, commented setup form for PROVIDER (stdout, or -o FILE)."""
    from lab.providers.blank import blank_form
    from lab.topology.profiles import load_profile

    text = blank_form(load_profile(provider))
    if output is None:
        sys.stdout.write(text)
        return
    output.write_text(text)
    out.print(f"wrote {output}")


@form.command("check")
@click.argument("forms", nargs=-1, required=True, type=click.Path(path_type=Path))
def form_check(forms: tuple[Path, ...]) -> None:
    """List every broken rule (error) and departure from a recommendation (warning) of
    each FORM; exit 2 if there is an error."""
    from lab.core.errors import InputError
    from lab.providers.form import load_form
    from lab.providers.rules import check, errors
    from lab.topology.profiles import load_profile

    failed = False
    for path in forms:
        try:
            f = load_form(path)
            findings = check(f, load_profile(f.provider))
        except InputError as exc:
            show_error(exc if exc.file else exc.in_file(path))
            failed = True
            continue
        for finding in findings:
            style = "bold red" if finding.level == "error" else "yellow"
            text = f"{path}: [{style}]{finding.level}[/]: {escape(finding.field)}: "
            err.print(text + escape(finding.text), highlight=False, soft_wrap=True)
        if errors(findings):
            failed = True
        else:
            warnings = len(findings)
            out.print(f"{path}: ok ({f.provider} profile, {warnings} warning(s))", highlight=False)
    if failed:
        sys.exit(2)


@form.command("render")
@click.argument("form_file", metavar="FORM", type=click.Path(dir_okay=False, path_type=Path))
@templates_option
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True)
def form_render(form_file: Path, templates: Path | None, output: Path) -> None:
    """Write the customer's bundle (OUT/customer/) and the lab that runs it
    (OUT/topology.yaml: vpnlab up OUT/topology.yaml). Both hold the keys (mode 0600)."""
    from lab.providers.setup import prepare

    prepared = prepare(form_file, templates)
    for finding in prepared.findings:
        err.print(f"{form_file}: [yellow]warning[/]: {escape(str(finding))}", highlight=False)
    topology = prepared.write(output)
    for name in prepared.bundle:
        out.print(f"  {output}/customer/{name}")
    out.print(f"  {topology}")
    out.print(f"bundle for {prepared.form.customer} from {prepared.templates}", highlight=False)
