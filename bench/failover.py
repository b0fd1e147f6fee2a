"""Failover benchmark: the outage a customer sees when tunnel 1 fails, by routing mode,
IKE version and way of failing, next to the bound the configured timers allow.

    .venv/bin/python bench/failover.py [--runs N] [--runtimes netns,docker] [--json FILE]
                                       [topology.yaml ...]

Each topology is brought up once; every failure is then measured N times with a 20 ms
probe from the provider host to the customer host (lab.failover.measure), restoring and
re-converging the lab between runs. Needs root. Always tears its labs down.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from common import ROOT, fmt, format_table  # also puts the repo on sys.path

from lab.core.shipped import find_topology
from lab.ops import bringup
from lab.ops.failover import FAILURES, measure, restore
from lab.topology import load_lab

DEFAULT = ["tray-static-ikev1", "tray-static-ikev2", "tray-bgp-ikev1", "tray-bgp-ikev2"]


def bench_topology(
    path: Path, failures: list[str], runs: int, name: str, runtime: str, dataplane: str
) -> list[dict]:
    asked = load_lab(path, name=name).asking(None if dataplane == "auto" else dataplane)
    lab = bringup.up(asked, timeout=60, runtime=runtime)
    plane = ",".join(sorted(set(lab.state.dataplane.values())))
    rows = []
    try:
        for failure in failures:
            for i in range(runs):
                m = measure(lab, "tunnel1", failure)
                took = restore(lab)
                print(
                    f"{runtime} {plane} {path.stem} {failure} {i + 1}/{runs}: "
                    f"outage {m.result.outage:.2f}s, loss {m.result.loss:.1f}%, "
                    f"restored in {took:.1f}s",
                    file=sys.stderr,
                    flush=True,
                )
                rows.append(
                    {
                        "runtime": runtime,
                        "dataplane": plane,
                        "topology": path.stem,
                        "routing": lab.lab.tunnels["tunnel1"].routing,
                        "ike": lab.lab.tunnels["tunnel1"].provider.ike,
                        "failure": failure,
                        "run": i,
                        "outage": m.result.outage,
                        "recovered": m.result.longest is None or m.result.longest.recovered,
                        "loss": m.result.loss,
                        "bound": m.bound.seconds,
                        "bound_reason": m.bound.reason,
                        "restore": took,
                    }
                )
    finally:
        lab.down()
    return rows


def table(rows: list[dict]) -> str:
    out = [
        [
            "runtime",
            "data plane",
            "topology",
            "failure",
            "runs",
            "median outage",
            "min",
            "max",
            "median loss %",
            "bound",
            "within",
        ]
    ]

    def key_of(r: dict) -> tuple[str, ...]:
        return r["runtime"], r.get("dataplane", "userspace"), r["topology"], r["failure"]

    for key in dict.fromkeys(key_of(r) for r in rows):
        runs = [r for r in rows if key_of(r) == key]
        outages = [r["outage"] for r in runs]
        bound = runs[0]["bound"]
        within = sum(bound is None or r["outage"] <= bound for r in runs)
        unrecovered = "" if all(r["recovered"] for r in runs) else " (no recovery)"
        out.append(
            [
                *key,
                str(len(runs)),
                fmt(statistics.median(outages)) + unrecovered,
                fmt(min(outages)),
                fmt(max(outages)),
                f"{statistics.median(r['loss'] for r in runs):.1f}",
                "none" if bound is None else fmt(bound),
                f"{within}/{len(runs)}",
            ]
        )
    return format_table(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("topologies", nargs="*", help=f"default: {', '.join(DEFAULT)}")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--failures",
        default=",".join(FAILURES),
        help=f"comma-separated, from {', '.join(FAILURES)}",
    )
    parser.add_argument("--runtimes", default="netns", help="comma-separated: netns, docker")
    parser.add_argument(
        "--dataplane",
        default="auto",
        choices=("auto", "userspace", "kernel"),
        help="ask every lab for this data plane (default: what the kernel offers)",
    )
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("the lab needs root")
    failures = args.failures.split(",")
    unknown = set(failures) - set(FAILURES)
    if unknown:
        parser.error(f"unknown failures {sorted(unknown)}")
    paths = [find_topology(p) for p in args.topologies] or [
        ROOT / "topologies" / f"{t}.yaml" for t in DEFAULT
    ]
    rows: list[dict] = []
    try:
        for runtime in args.runtimes.split(","):
            for i, path in enumerate(paths):
                rows += bench_topology(
                    path,
                    failures,
                    args.runs,
                    f"fo-{os.getpid()}-{runtime[0]}{i}",
                    runtime,
                    args.dataplane,
                )
    except KeyboardInterrupt:
        print("interrupted: reporting the runs so far", file=sys.stderr)
    print(
        f"failover of tunnel1, {args.runtimes} runtime, "
        f"{', '.join(sorted({r.get('dataplane', '?') for r in rows}))} data plane, "
        f"{os.cpu_count()} CPUs, {platform.release()}; "
        "outage = longest gap in a 20 ms ICMP probe, seconds"
    )
    print(table(rows) if rows else "(no run completed)")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "rows": rows}, indent=1)
        )
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
