"""iputils ping, the one traffic source vpnlab uses: its command line and its output read
back (replies with their timestamps, the summary)."""

from __future__ import annotations

import re
import shlex
from ipaddress import IPv4Address

REPLY = re.compile(r"^\[(\d+\.\d+)\] \d+ bytes from .*icmp_seq=(\d+)")  # with -D
SUMMARY = re.compile(r"(\d+) packets transmitted, (\d+) received")


def ping_argv(dst: IPv4Address | str, *, count: int, interval: float, wait: float) -> list[str]:
    """A probe's ping: a timestamp on every line (-D), and a line for each missing reply (-O).
    Bounded by ``count``; no deadline (-w): with one, iputils ping quits on the first ICMP
    error, such as a gateway's "net unreachable"."""
    return [
        "ping",
        "-n",
        "-D",
        "-O",
        "-i",
        f"{interval:g}",
        "-W",
        f"{wait:g}",
        "-c",
        str(count),
        str(dst),
    ]


def spaced_pings_argv(
    dst: IPv4Address | str, *, count: int, interval: float, wait: float
) -> list[str]:
    """``count`` one-probe pings started ``interval`` apart, each waiting up to ``wait`` for
    its own reply: a reply counts if it comes within ``wait`` of its probe.

    One ``ping -c count`` does not give that: once it has had a reply, iputils waits only
    max(2 x the largest RTT so far, the interval) after its last probe (``-W`` applies only
    while nothing has come back), so on a busy host a reply the userspace data plane delays
    by ~50 ms is counted as lost ("5 packets transmitted, 3 received")."""
    one = shlex.join(["ping", "-n", "-q", "-c", "1", "-W", f"{wait:g}", str(dst)])
    return ["sh", "-c", f"for i in $(seq {count}); do {one} & sleep {interval:g}; done; wait"]


def replies(output: str) -> dict[int, float]:
    """icmp_seq -> when its reply arrived (epoch seconds), from ``ping -D`` output."""
    out: dict[int, float] = {}
    for line in output.splitlines():
        if m := REPLY.match(line):
            out.setdefault(int(m.group(2)), float(m.group(1)))
    return out


def ping_summary(output: str) -> tuple[int, int] | None:
    """(sent, received) from ping's closing summary, summed over several pings' summaries;
    None if none was printed."""
    found = SUMMARY.findall(output)
    if not found:
        return None
    return sum(int(s) for s, _ in found), sum(int(r) for _, r in found)
