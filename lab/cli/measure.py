"""``vpnlab probe`` and ``vpnlab failover``: what traffic sees, from the command line."""

from __future__ import annotations

import sys
import time

import click
from rich.live import Live

from lab.cli.common import lab_option, main, out, pick_lab, seconds_option
from lab.core.errors import InputError

FAILURES = ("terminate", "kill-charon", "block", "link-down", "black-hole")


def _address(running, ref: str) -> str:
    """A node's name (its first address) or an address."""
    node = running.lab.nodes.get(ref)
    if node is None:
        return ref
    return str(node.interfaces[0].address.ip)


@main.command()
@click.argument("src")
@click.argument("dst")
@click.option("--for", "duration", default="30s", show_default=True, help="how long: 30, 30s, 2m")
@lab_option
def probe(src: str, dst: str, duration: str, lab_name: str | None) -> None:
    """Ping DST (a node or an address) from node SRC every 20 ms and show what is lost, live;
    Ctrl-C ends it early. The summary names the longest outage and which tunnel carried
    each direction."""
    from lab.ops.probe import Probe
    from lab.session.handle import RunningLab

    running = RunningLab.attach(pick_lab(lab_name))
    if src not in running.lab.nodes:
        raise InputError("SRC", f"no node {src!r} in lab {running.name}")
    seconds = seconds_option(duration)
    p = Probe(running, src, _address(running, dst), seconds).start()
    try:
        with Live(console=out, refresh_per_second=4, transient=True) as live:
            while p.active:
                sent, answered, silent = p.progress()
                outage = f", [bold red]no reply for {silent:.1f}s[/]" if silent > 0.5 else ""
                live.update(f"{src} -> {dst}: {sent} sent, {sent - answered} lost{outage}")
                time.sleep(0.25)  # a display refresh, not a wait for state
    except KeyboardInterrupt:
        p.stop()
    result = p.finish()
    out.print(result.summary(), highlight=False, soft_wrap=True)


@main.command()
@click.argument("tunnel")
@click.option("--by", "failure", type=click.Choice(FAILURES), default="block", show_default=True)
@click.option("--keep-fault", is_flag=True, help="leave the fault in place afterwards")
@lab_option
def failover(tunnel: str, failure: str, keep_fault: bool, lab_name: str | None) -> None:
    """Fail TUNNEL under a probe, measure the outage and compare it with the bound the
    lab's timers give (the measurement the failover scenarios make); exit 1 if it is
    exceeded. The fault is cleared and the lab re-converged afterwards."""
    from lab.ops import failover as ops
    from lab.session.handle import RunningLab

    running = RunningLab.attach(pick_lab(lab_name))
    if tunnel not in running.lab.tunnels:
        raise InputError("TUNNEL", f"no tunnel {tunnel!r} in lab {running.name}")
    with out.status(f"failing {tunnel} by {failure}, probing..."):
        m = ops.measure(running, tunnel, failure)
    r = m.result
    held = m.bound.holds(r.outage) and (r.longest is None or r.longest.recovered)
    out.print(r.summary(), highlight=False, soft_wrap=True)
    verdict = "[green]within[/]" if held else "[bold red]over[/]"
    out.print(f"outage {r.outage:.2f}s {verdict} the bound: {m.bound}", soft_wrap=True)
    if not keep_fault:
        with out.status("clearing the fault, waiting for the lab to re-converge"):
            took = ops.restore(running)
        out.print(f"re-converged {took:.1f}s after the fault was cleared")
    if not held:
        sys.exit(1)


@main.command()
@lab_option
@click.option("--follow", "-f", is_flag=True, help="keep printing events as they come")
@click.option("--json", "as_json", is_flag=True, help="the raw JSON lines")
def events(lab_name: str | None, follow: bool, as_json: bool) -> None:
    """The lab's timeline: SAs up, down and rekeyed, BGP sessions, faults, probe outages."""
    from lab.observe import events as timeline

    name = pick_lab(lab_name)
    stream = (
        timeline.follow(name) if follow else iter(sorted(timeline.read(name), key=lambda e: e.mono))
    )
    t0 = None
    try:
        for event in stream:
            if as_json:
                click.echo(event.model_dump_json())
                continue
            t0 = event.mono if t0 is None else t0
            out.print(event.line(t0), highlight=False, soft_wrap=True)
    except KeyboardInterrupt:
        pass
