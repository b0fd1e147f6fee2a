"""What every command shares: the ``vpnlab`` group, its consoles, error handling and the
choice of lab."""

from __future__ import annotations

import sys

import click
from rich.console import Console
from rich.markup import escape

from lab.core.errors import InputError, LabError, VpnlabError

# Piped output (CI logs, files) gets room for the status tables.
out = Console(width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True)


def show_error(exc: VpnlabError) -> None:
    # The message may quote user input such as "[red]": never let rich read it as markup.
    err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)


def fail(exc: VpnlabError) -> None:
    show_error(exc)
    sys.exit(exc.exit_code)


class _Group(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except VpnlabError as exc:
            fail(exc)


@click.group(cls=_Group)
@click.version_option(package_name="vpnlab")
def main() -> None:
    """Site-to-site IPsec VPN labs with real strongSwan and FRR."""


def pick_lab(name: str | None, *, positional: bool = False) -> str:
    """The lab a command acts on: the one named, else the only one up. With several up,
    the error lists them and spells out the command to type (``positional``: the command
    takes the name as its argument, as ``down`` does, not as ``--lab``)."""
    from lab.session import state

    if name:
        return name
    labs = state.names()
    if len(labs) == 1:
        return labs[0]
    if not labs:
        raise LabError("no lab is running (vpnlab up FILE)")
    ctx = click.get_current_context(silent=True)
    command = ctx.command_path if ctx else "vpnlab COMMAND"
    how = "\n".join(
        f"  {command} {lab}" if positional else f"  {command} --lab {lab}" for lab in labs
    )
    raise LabError(f"{len(labs)} labs are running; say which one:\n{how}")


lab_option = click.option("--lab", "-l", "lab_name", help="lab name (default: the only one up)")


def seconds_option(value: str, field: str = "--for") -> float:
    """A duration option (30, 30s, 2m) in seconds; InputError naming the option."""
    from lab.topology.schema import parse_duration

    try:
        return float(parse_duration(value))
    except ValueError as exc:
        raise InputError(field, str(exc)) from None
