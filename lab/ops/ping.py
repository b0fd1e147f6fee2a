"""iputils ping, the one traffic source vpnlab uses: its command line and its output read
back (replies with their timestamps, the summary)."""

from __future__ import annotations

import re
from ipaddress import IPv4Address

REPLY = re.compile(r"^\[(\d+\.\d+)\] \d+ bytes from .*icmp_seq=(\d+)")  # with -D
SUMMARY = re.compile(r"(\d+) packets transmitted, (\d+) received")


def ping_argv(
    dst: IPv4Address | str,
    *,
    count: int,
    interval: float,
    wait: float,
    quiet: bool = False,
    timestamps: bool = False,
) -> list[str]:
    """Bounded by ``count``; no deadline (-w): with one, iputils ping quits on the first
    ICMP error, such as a gateway's "net unreachable"."""
    flags = ["-q"] if quiet else []
    if timestamps:
        flags += ["-D", "-O"]  # a timestamp on every line; say so when a reply is missing
    return [
        "ping",
        "-n",
        *flags,
        "-i",
        f"{interval:g}",
        "-W",
        f"{wait:g}",
        "-c",
        str(count),
        str(dst),
    ]


def replies(output: str) -> dict[int, float]:
    """icmp_seq -> when its reply arrived (epoch seconds), from ``ping -D`` output."""
    out: dict[int, float] = {}
    for line in output.splitlines():
        if m := REPLY.match(line):
            out.setdefault(int(m.group(2)), float(m.group(1)))
    return out


def ping_summary(output: str) -> tuple[int, int] | None:
    """(sent, received) from ping's closing summary; None if it printed none."""
    m = SUMMARY.search(output)
    return (int(m.group(1)), int(m.group(2))) if m else None
