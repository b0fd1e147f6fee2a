"""Bring-up benchmark: how long each topology takes from ``bringup.up`` to converged.

    .venv/bin/python bench/bringup.py [--runs N] [--runtime netns,docker] [--json FILE]
                                      [--recorder] [topology.yaml ...]

Every run deploys the topology under a lab name of its own, times the whole ``up()`` (it
returns once the lab has converged) and each phase (from ``up``'s progress callback), then
tears the lab down before the next run. A failed run is recorded and the bench goes on.
Several runtimes take turns, run by run, so that their rows come from one run of the bench.
``--recorder`` alternates runs with and without the lab's event recorder (one row each):
what the timeline costs a bring-up, measured side by side in one run.
Nothing is left behind, Ctrl-C included. Needs root, like the lab itself.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from common import ROOT, fmt, format_table  # also puts the repo on sys.path

from lab.core.errors import VpnlabError
from lab.ops import bringup
from lab.session.cleanup import destroy_lab, leftovers
from lab.topology import load_lab
from lab.topology.model import Lab

# Column headers for deploy's phase names, in deploy order.
PHASES = {
    "create nodes": "create",
    "render configs": "render",
    "start FRR": "frr",
    "wire segments": "wire",
    "configure nodes": "config",
    "start charon": "charon",
    "load configs": "load",
    "wait for convergence": "converge",
}


@dataclass
class Run:
    topology: str
    lab: str
    run: int
    ok: bool = False
    recorder: bool = True
    runtime: str = "netns"
    total: float | None = None  # start of up() -> converged (and the recorder started)
    phases: dict[str, float] = field(default_factory=dict)
    teardown: float | None = None
    error: str | None = None


# Runtimes ---------------------------------------------------------------------------------
# One entry per runtime the bench can drive: bring ``lab`` up (returning the running lab,
# whose ``down()`` removes it) and say whether anything of it is left on the host.
Up = Callable[..., bringup.RunningLab]


def _up(runtime: str) -> Up:
    def up(
        lab: Lab, progress: bringup.Progress, timeout: float, record: bool = True
    ) -> bringup.RunningLab:
        return bringup.up(lab, progress=progress, timeout=timeout, runtime=runtime, record=record)

    return up


def _leftover(lab: Lab) -> bool:
    return bool(leftovers(lab.name))


RUNTIMES: dict[str, tuple[Up, Callable[[Lab], bool]]] = {
    kind: (_up(kind), _leftover) for kind in ("netns", "docker")
}


# One run ----------------------------------------------------------------------------------
def _teardown(
    lab: Lab, running: bringup.RunningLab | None, leftover: Callable[[Lab], bool]
) -> None:
    """Remove the lab whatever state it is in; a second Ctrl-C must not cut this short."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        if running is not None:
            running.down()
        elif leftover(lab):  # interrupted inside up(): up() tears down, this makes sure
            destroy_lab(lab.name)
    finally:
        signal.signal(signal.SIGINT, previous)


def one_run(
    path: str, lab: Lab, index: int, runtime: str, timeout: float, record: bool = True
) -> Run:
    up, leftover = RUNTIMES[runtime]
    result = Run(topology=path, lab=lab.name, run=index, recorder=record, runtime=runtime)
    running = None
    t0 = time.monotonic()
    try:
        running = up(
            lab,
            progress=lambda phase, secs: result.phases.__setitem__(phase, secs),
            timeout=timeout,
            record=record,
        )
        result.total = time.monotonic() - t0
        result.ok = True
    except Exception as exc:  # record it and go on with the next run
        text = str(exc).strip()
        result.error = (f"{type(exc).__name__}: " if not isinstance(exc, VpnlabError) else "") + (
            text.splitlines()[0][:300] if text else ""
        )
    finally:
        t1 = time.monotonic()
        _teardown(lab, running, leftover)
        result.teardown = time.monotonic() - t1
    return result


# Report -----------------------------------------------------------------------------------
def table(results: list[Run]) -> str:
    header = ["topology", "runtime", "ok", "median", "min", "max", "spread", *PHASES.values()]
    rows = [header]
    for key in dict.fromkeys((r.topology, r.runtime, r.recorder) for r in results):
        topo, runtime, recorder = key
        runs = [r for r in results if (r.topology, r.runtime, r.recorder) == key]
        totals = [r.total for r in runs if r.ok]
        stats = (
            [statistics.median(totals), min(totals), max(totals), max(totals) - min(totals)]
            if totals
            else [None] * 4
        )
        phases = []
        for phase in PHASES:
            times = [r.phases[phase] for r in runs if r.ok and phase in r.phases]
            phases.append(statistics.median(times) if times else None)
        rows.append(
            [
                Path(topo).stem + ("" if recorder else " (no recorder)"),
                runtime,
                f"{len(totals)}/{len(runs)}",
                *(fmt(v) for v in stats),
                *(fmt(v) for v in phases),
            ]
        )
    failures = [
        f"  {Path(r.topology).stem} run {r.run} ({r.lab}): {r.error}" for r in results if not r.ok
    ]
    return "\n".join([format_table(rows), *(["failed runs:", *failures] if failures else [])])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("topologies", nargs="*", help="topology files (default: topologies/*.yaml)")
    parser.add_argument("--runs", type=int, default=5, help="runs per topology (default 5)")
    parser.add_argument(
        "--runtime",
        default="netns",
        help="node runtimes, comma-separated, taking turns run by run (default netns)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="convergence timeout per run, seconds (default 30)",
    )
    parser.add_argument(
        "--prefix",
        default="bench",
        help="lab-name prefix; names are PREFIX-PID-T-RUN... (default 'bench')",
    )
    parser.add_argument(
        "--recorder",
        action="store_true",
        help="alternate runs with and without the event recorder (one row each)",
    )
    parser.add_argument("--json", metavar="FILE", help="write every run's raw timings here")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if os.geteuid() != 0:
        parser.error("the lab needs root (network namespaces, daemons)")
    paths = args.topologies or [
        os.path.relpath(p) for p in sorted((ROOT / "topologies").glob("*.yaml"))
    ]
    if not paths:
        parser.error("no topology files")
    runtimes = [r.strip() for r in args.runtime.split(",") if r.strip()]
    if not runtimes or set(runtimes) - set(RUNTIMES):
        parser.error(f"--runtime: choose from {', '.join(sorted(RUNTIMES))}")

    results: list[Run] = []
    try:
        for t, path in enumerate(paths):
            for i in range(args.runs):
                for runtime, record in [
                    (rt, rec)
                    for rt in runtimes
                    for rec in ((True, False) if args.recorder else (True,))
                ]:
                    tag = f"{i}{runtime[0]}{'' if record else 'n'}"  # run, runtime, recorder
                    name = f"{args.prefix}-{os.getpid() % 10000}-{t}-{tag}"
                    try:
                        lab = load_lab(path, name=name)
                    except VpnlabError as exc:
                        parser.error(str(exc))
                    run = one_run(path, lab, i, runtime, args.timeout, record)
                    results.append(run)
                    status = f"{run.total:.2f}s" if run.ok else f"FAILED: {run.error}"
                    print(
                        f"{Path(path).stem} {runtime} run {i + 1}/{args.runs}"
                        f"{'' if record else ' (no recorder)'}: {status}",
                        file=sys.stderr,
                        flush=True,
                    )
    except KeyboardInterrupt:
        print("interrupted: reporting the runs so far", file=sys.stderr)
    print(
        f"bring-up, {args.runtime} runtime, {os.cpu_count()} CPUs, {platform.release()}; "
        "seconds from up() to converged; phases are medians"
    )
    print(table(results) if results else "(no run completed)")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "runtimes": runtimes,
                    "cpus": os.cpu_count(),
                    "kernel": platform.release(),
                    "runs_per_topology": args.runs,
                    "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "results": [asdict(r) for r in results],
                },
                indent=1,
            )
        )
    return 0 if results and all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
