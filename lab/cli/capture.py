"""``vpnlab capture``: a pcap of a node's interface or a whole segment, optionally with the
keys that decrypt it."""

from __future__ import annotations

import time
from pathlib import Path

import click
from rich.markup import escape

from lab.cli.common import lab_option, main, out, pick_lab, seconds_option
from lab.core.errors import InputError


@main.command()
@click.argument("where", metavar="NODE:IFACE|SEGMENT")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="the pcap file (default: LAB-WHERE.pcap here)",
)
@click.option("--for", "duration", help="how long: 30, 30s, 2m (default: until Ctrl-C)")
@click.option(
    "--keys",
    is_flag=True,
    help="also write FILE.keys/, Wireshark's key tables (esp_sa, ikev2_decryption_table; "
    "0600 in a 0700 folder). Keys exist only while SAs are negotiated: this REKEYS every "
    "tunnel that is up (IKE_SA, then CHILD_SAs) with charon's key log on for just that "
    "long; what follows is decryptable.",
)
@lab_option
def capture(
    where: str, output: Path | None, duration: str | None, keys: bool, lab_name: str | None
) -> None:
    """Capture packets with tcpdump on a node's interface (NODE:IFACE, e.g. cgw:internet or
    cgw:ipsec0) or on a whole segment (e.g. internet), until Ctrl-C or --for. With --keys,
    prints the tshark command that opens the capture decrypted."""
    from lab.ops import capture as ops
    from lab.session.handle import RunningLab

    seconds = seconds_option(duration) if duration is not None else None
    if output is not None and not output.parent.is_dir():
        raise InputError("--output", f"directory {output.parent} does not exist")
    running = RunningLab.attach(pick_lab(lab_name))
    spot = ops.target(running.lab, where)
    pcap = output or Path(f"{running.name}-{str(spot).replace(':', '-')}.pcap")
    t0 = time.monotonic()
    cap = ops.Capture(running, spot, pcap).start()
    until = "Ctrl-C" if seconds is None else f"{seconds:g}s or Ctrl-C"
    out.print(f"capturing on {escape(str(spot))} into {escape(str(pcap))} (until {until})")
    taken = None
    try:
        if keys:
            with out.status("rekeying every tunnel with charon's key log on..."):
                taken = ops.take_keys(running, ops.keys_folder(pcap))
            cap.record_keys(taken)
            out.print(escape(taken.summary()), soft_wrap=True)
        left = None if seconds is None else max(0.0, seconds - (time.monotonic() - t0))
        cap.wait(left)
    except KeyboardInterrupt:
        pass
    finally:
        result = cap.stop()
    count = f"{result.packets} packets" if result.packets is not None else "capture stopped"
    out.print(f"{count} in {escape(str(pcap))}")
    if taken is not None:
        out.print("open it decrypted:", soft_wrap=True)
        out.print(escape(ops.tshark_line(pcap, taken.folder)), soft_wrap=True, highlight=False)
