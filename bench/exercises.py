"""How many exercise labs one machine holds side by side, every one converged, and what
each costs in memory.

    .venv/bin/python bench/exercises.py [--exercise NAME] [--levels 1,2,4,8,16]
                                        [--runtime netns] [--max-seconds 300] [--json FILE]

For each level the bench starts exercise labs (one trainee each: ``tr-bNN``) until that many
run, applies the reference solution to the new ones, then waits until *every* lab up has
converged (``convergence_problems``: all SAs installed, BGP Established, routes in place) and
reads, on the netns runtime, the proportional set size (PSS, /proc/PID/smaps_rollup) of
every process in each lab's namespaces, and the host's MemAvailable. It stops at the first
level where a lab does not converge within the timeout, where the level took longer than
``--max-seconds``, or after the last level. Every lab it started is removed, Ctrl-C
included. Needs root, like the lab itself.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from common import fmt, format_table  # also puts the repo on sys.path

from lab.core.errors import VpnlabError, WaitTimeout
from lab.core.waits import wait_until
from lab.observe.convergence import convergence_problems
from lab.session.handle import RunningLab
from lab.training import trainer

CONVERGE_TIMEOUT = 60.0


@dataclass
class Level:
    labs: int
    ok: bool
    start_s: float  # starting (and fixing) the labs added at this level
    converge_s: float  # then until every lab up had converged
    pss_mib_per_lab: float | None
    rss_mib_per_lab: float | None
    processes_per_lab: float
    mem_available_mib: float
    mem_used_mib_per_lab: float  # MemAvailable lost since the bench began, per lab
    load1: float
    note: str = ""


def _meminfo(key: str) -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    raise KeyError(key)


def _rollup(pid: int) -> tuple[float, float]:
    """(PSS, RSS) of a process in MiB; zeros if it is gone."""
    pss = rss = 0.0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1]) / 1024
            elif line.startswith("Rss:"):
                rss = int(line.split()[1]) / 1024
    except OSError:
        pass
    return pss, rss


def lab_memory(running: RunningLab) -> tuple[float, float, int]:
    """PSS and RSS (MiB) of every process in the lab's nodes, and how many there are."""
    pids = {pid for node in running.lab.nodes for pid in running.runtime.processes(node)}
    sizes = [_rollup(pid) for pid in pids]
    return sum(p for p, _ in sizes), sum(r for _, r in sizes), len(pids)


def run(args: argparse.Namespace) -> list[Level]:
    levels = [int(n) for n in args.levels.split(",")]
    trainees: list[str] = []
    results: list[Level] = []
    baseline = _meminfo("MemAvailable")
    try:
        for target in levels:
            t0 = time.monotonic()
            note = ""
            try:
                while len(trainees) < target:
                    who = f"tr-b{len(trainees) + 1:02d}"
                    trainees.append(who)
                    trainer.start(args.exercise, who, args.runtime)
                    trainer.solution(who)
                started = time.monotonic() - t0
                labs = [RunningLab.attach(trainer.trainee.read(w).lab) for w in trainees]
                for running in labs:
                    wait_until(
                        lambda r=running: convergence_problems(r),
                        lambda problems: not problems,
                        timeout=CONVERGE_TIMEOUT,
                        interval=0.2,
                        what=f"lab {running.name} to converge",
                    )
                ok = True
            except (VpnlabError, WaitTimeout) as exc:
                started = time.monotonic() - t0
                ok, note = False, str(exc).splitlines()[0][:200]
                labs = []
            converged = time.monotonic() - t0 - started
            memory = [lab_memory(r) for r in labs] if args.runtime == "netns" else []
            n = len(trainees)
            available = _meminfo("MemAvailable")
            level = Level(
                labs=n,
                ok=ok,
                start_s=round(started, 2),
                converge_s=round(converged, 2),
                pss_mib_per_lab=round(sum(m[0] for m in memory) / n, 1) if memory else None,
                rss_mib_per_lab=round(sum(m[1] for m in memory) / n, 1) if memory else None,
                processes_per_lab=round(sum(m[2] for m in memory) / n, 1) if memory else 0,
                mem_available_mib=round(available),
                mem_used_mib_per_lab=round((baseline - available) / n, 1),
                load1=os.getloadavg()[0],
                note=note,
            )
            results.append(level)
            print(
                f"{n} labs: {'converged' if ok else 'FAILED'} (start {started:.1f}s, "
                f"converge {converged:.1f}s), PSS/lab {fmt(level.pss_mib_per_lab)} MiB, "
                f"MemAvailable {available:.0f} MiB {note}",
                flush=True,
            )
            if not ok or time.monotonic() - t0 > args.max_seconds:
                break
    finally:
        for who in reversed(trainees):
            trainer.stop(who, missing_ok=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exercise", default="psk-mismatch")
    parser.add_argument("--levels", default="1,2,4,8,16")
    parser.add_argument("--runtime", default="netns")
    parser.add_argument("--max-seconds", type=float, default=300.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = run(args)
    rows = [["labs", "ok", "start s", "converge s", "PSS MiB/lab", "RSS MiB/lab", "procs/lab",
             "host MiB/lab", "MemAvailable MiB", "load1"]]  # fmt: skip
    rows += [
        [
            str(r.labs),
            "yes" if r.ok else "no",
            fmt(r.start_s),
            fmt(r.converge_s),
            fmt(r.pss_mib_per_lab),
            fmt(r.rss_mib_per_lab),
            f"{r.processes_per_lab:g}",
            fmt(r.mem_used_mib_per_lab),
            str(int(r.mem_available_mib)),
            fmt(r.load1),
        ]
        for r in results
    ]
    print(f"\n{args.exercise} on {args.runtime}, {platform.node()}, {os.cpu_count()} CPUs")
    print(format_table(rows))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1))


if __name__ == "__main__":
    sys.exit(main())
