"""`vpnlab fault ...`: break a running lab on purpose, list what is broken, undo it."""

from __future__ import annotations

import inspect

import click
from rich.markup import escape

from lab.cli.common import lab_option, main, out, pick_lab
from lab.cli.views import clock
from lab.core.errors import LabError


@main.group()
def fault() -> None:
    """Break a running lab on purpose, list what is broken, undo it."""


def _value(text: str) -> object:
    if text.lower() in ("true", "yes"):
        return True
    if text.lower() in ("false", "no"):
        return False
    return int(text) if text.isdigit() else text


def _attach(lab_name: str | None):
    from lab.session.handle import RunningLab

    return RunningLab.attach(pick_lab(lab_name))


@fault.command(name="add")
@lab_option
@click.argument("kind")
@click.argument("params", nargs=-1)
def fault_add(lab_name: str | None, kind: str, params: tuple[str, ...]) -> None:
    """Inject a fault: vpnlab fault add kill node=vgw1 daemon=charon"""
    from lab.ops import faults

    args = {}
    for p in params:
        key, sep, value = p.partition("=")
        if not sep:
            raise LabError(f"fault parameters are key=value, got {p!r}")
        args[key] = _value(value)
    running = _attach(lab_name)
    try:
        f = faults.inject(running, kind, **args)
    except TypeError as exc:  # wrong or missing parameters for this kind
        raise LabError(f"fault {kind}: {exc}; see 'vpnlab fault kinds'") from None
    out.print(f"fault {f.id}: {escape(f.description)}", highlight=False)


@fault.command(name="clear")
@lab_option
@click.argument("fault_id", type=int, required=False)
def fault_clear(lab_name: str | None, fault_id: int | None) -> None:
    """Undo one fault (by id) or all of them (and any fault table left in a node)."""
    from lab.ops import faults

    for f in faults.clear(_attach(lab_name), fault_id):
        out.print(f"cleared fault {f.id}: {escape(f.description)}", highlight=False)


@fault.command(name="list")
@lab_option
def fault_list(lab_name: str | None) -> None:
    """Active faults, oldest first, with when they started."""
    from lab.ops import faults

    for f in faults.active(_attach(lab_name)):
        out.print(
            f"{f.id}  {clock(f.started)}  {f.kind:<10} {escape(f.description)}", highlight=False
        )


@fault.command(name="kinds")
def fault_kinds() -> None:
    """The fault kinds and their parameters."""
    from lab.ops import faults

    for name, kind in sorted(faults.FAULTS.items()):
        params = list(inspect.signature(kind.apply).parameters.values())[2:]
        sig = " ".join(p.name + ("" if p.default is p.empty else f"={p.default}") for p in params)
        out.print(f"{name:<10} {sig}\n           {kind.help}", highlight=False)
