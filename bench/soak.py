"""Soak: a lab under a 20 ms probe for minutes, every tunnel's IKE_SA and CHILD_SAs rekeyed by
force every 30 s, on the data plane this machine (or the guest) gives.

    .venv/bin/python bench/soak.py [--minutes 10] [--every 30] [--dataplane auto]
                                   [--runtime netns] [--json FILE] [topology ...]

Reports, per topology: probes sent and lost, the losses charged to each rekey (a lost
probe is charged to the rekey requested last before it was sent), how many of them fall
outside the IKEv1 Quick Mode window (from an IKEv1 CHILD_SA rekey's request until both ends
hold the new SA, as measured for that rekey: the initiator sends on the new SA a moment
before its peer has installed it inbound; on the host that is the one probe in flight, in
an emulated guest it is longer), the longest such window and the most probes one QM rekey
lost, the resident memory (VmRSS) of every daemon at start, half way and end (and after
every round, in the JSON), the SAs and XFRM states and policies each gateway holds at start
and end, and what is left after ``down`` (the lab's leftovers, and XFRM states and policies
in the host's namespace). Needs root. Not a test: a figure to read, always bounded by --minutes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from common import format_table  # also puts the repo on sys.path

from lab.core.shipped import find_topology
from lab.daemons import xfrm
from lab.ops import bringup
from lab.ops.failover import probe_pair
from lab.ops.probe import Probe
from lab.ops.rekey import attribute, lost_send_times, rekey_once
from lab.session.cleanup import leftovers
from lab.session.handle import RunningLab
from lab.topology import load_lab

DEFAULT = ["tray-bgp-ikev2", "tray-static-ikev1"]
DAEMONS = ("charon", "zebra", "bgpd", "staticd")


def rss_kib(running: RunningLab) -> dict[str, int]:
    """'node/daemon' -> VmRSS in KiB, read inside each node (netns or container)."""
    out = {}
    for node in running.lab.nodes:
        for pid, comm in running.runtime.processes(node).items():
            if comm not in DAEMONS:
                continue
            status = running.runtime.run(node, ["cat", f"/proc/{pid}/status"], check=False)
            for line in status.stdout.splitlines():
                if line.startswith("VmRSS:"):
                    out[f"{node}/{comm}"] = int(line.split()[1])
    return out


def sa_counts(running: RunningLab) -> dict[str, dict[str, int]]:
    """gateway -> CHILD_SAs charon lists, and the XFRM states and policies its kernel holds
    (none on the userspace data plane: libipsec keeps them in charon)."""
    out = {}
    for node in running.charons:
        listed = [
            c.get("state")
            for entry in running.charon(node).list_sas()
            for sa in entry.values()
            for c in sa.get("child-sas", {}).values()
        ]
        n_states, n_policies = xfrm_counts(
            lambda argv, node=node: running.runtime.run(node, argv, check=False).stdout
        )
        out[node] = {
            # IKEv1 keeps a rekeyed CHILD_SA (REKEYED) until its lifetime ends: listed, not used.
            "child_sas": len(listed),
            "installed": listed.count("INSTALLED"),
            "xfrm_states": n_states,
            "xfrm_policies": n_policies,
        }
    return out


def xfrm_counts(run: Callable[[list[str]], str]) -> tuple[int, int]:
    """(SAs, tunnel policies) where ``run`` runs a command and returns its output."""
    return xfrm.counts(run(["ip", "xfrm", "state"]), run(["ip", "xfrm", "policy"]))


def host_xfrm() -> tuple[int, int]:
    """(SAs, tunnel policies) in the host's own namespace: none may be left by a lab."""
    return xfrm_counts(lambda argv: subprocess.run(argv, capture_output=True, text=True).stdout)


def soak(path: Path, minutes: float, every: float, runtime: str, dataplane: str) -> dict:
    lab = load_lab(path, name=f"soak-{path.stem}"[:24]).asking(
        None if dataplane == "auto" else dataplane
    )
    running = bringup.up(lab, runtime=runtime)
    try:
        planes = sorted(set(running.state.dataplane.values()))
        ike = {t.customer.ike for t in running.lab.tunnels.values()}
        rss_start, sas_start = rss_kib(running), sa_counts(running)
        tunnel = next(iter(running.lab.tunnels))
        src, dst = probe_pair(running, tunnel)
        seconds = minutes * 60
        requests: list[tuple[float, str, str, float]] = []  # (requested, tunnel, kind, took)
        # Daemon RSS after each round: a warm-up levels off, a leak keeps climbing.
        series: list[tuple[float, dict[str, int]]] = [(0.0, rss_start)]
        t_start = time.time()
        failed: list[str] = []
        with Probe(running, src, dst, seconds + 5) as probe:
            deadline = time.time() + seconds
            next_round = time.time() + 2.0
            sides = ("customer", "provider")
            n = 0
            while time.time() < deadline:
                if time.time() >= next_round:
                    for t in running.lab.tunnels.values():
                        for kind in ("ike", "child"):
                            node = getattr(t, sides[n % 2]).node
                            try:
                                r = rekey_once(running, t.name, kind, node)
                                requests.append((r.requested, t.name, kind, r.seconds))
                            except Exception as exc:  # reported, the soak goes on
                                failed.append(f"{t.name} {kind}: {exc}")
                    n += 1
                    series.append((time.time() - t_start, rss_kib(running)))
                    print(f"{path.stem}: round {n} of rekeys done", file=sys.stderr, flush=True)
                    next_round += every
                # Paced by the rekey schedule: the probe runs on by itself meanwhile.
                time.sleep(min(0.5, max(0.0, next_round - time.time())))
            probe.stop()
            result = probe.finish()
        lost_at = lost_send_times(probe.output, result.started, result.interval, result.sent)
        per = attribute(lost_at, [r[0] for r in requests], result.interval)
        # Losses before the first rekey are charged to none: attribute() drops them.
        charged = sum(per)
        # IKEv1 Quick Mode windows: [request - one interval, complete on both ends].
        windows = [
            (req - result.interval, req + took)
            for req, _, kind, took in requests
            if kind == "child" and 1 in ike
        ]
        in_window = sum(any(a <= t <= b for a, b in windows) for t in lost_at)
        qm_lost = [
            n
            for n, (_, _, kind, _) in zip(per, requests, strict=True)
            if kind == "child" and 1 in ike
        ]
        rss_end, sas_end = rss_kib(running), sa_counts(running)
        series.append((time.time() - t_start, rss_end))
    finally:
        running.down()
    host_states, host_policies = host_xfrm()
    return {
        "topology": path.stem,
        "runtime": runtime,
        "dataplane": planes,
        "ike": sorted(ike),
        "minutes": minutes,
        "rekeys": len(requests),
        "rekeys_failed": failed,
        "sent": result.sent,
        "lost": result.sent - result.received,
        "lost_charged_to_rekeys": charged,
        "lost_outside_qm_window": result.sent - result.received - in_window,
        "qm_window_longest_s": round(max((b - a for a, b in windows), default=0.0), 3),
        "qm_lost_most": max(qm_lost, default=0),
        "per_rekey": [
            {"tunnel": t, "kind": k, "took_s": round(took, 3), "lost": n}
            for n, (_, t, k, took) in zip(per, requests, strict=True)
        ],
        "rss_kib": {k: [rss_start.get(k), rss_end.get(k)] for k in sorted(rss_start)},
        # start, half way, end: the second half's growth tells a warm-up from a leak
        "rss_kib_mid": {k: series[len(series) // 2][1].get(k) for k in sorted(rss_start)},
        "rss_series": [{"t_s": round(t, 1), "kib": rss} for t, rss in series],
        "sas": {"start": sas_start, "end": sas_end},
        "after_down": {
            "leftovers": leftovers(lab.name),
            "host_xfrm_states": host_states,
            "host_xfrm_policies": host_policies,
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("topologies", nargs="*", default=DEFAULT)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--every", type=float, default=30)
    ap.add_argument("--runtime", default="netns")
    ap.add_argument("--dataplane", default="auto", choices=("auto", "userspace", "kernel"))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    results = [
        soak(find_topology(t), args.minutes, args.every, args.runtime, args.dataplane)
        for t in args.topologies
    ]
    rows = [
        [
            "topology",
            "plane",
            "rekeys",
            "sent",
            "lost",
            "outside QM",
            "longest QM s",
            "most per QM",
            "left after down",
        ]
    ]
    for r in results:
        left = len(r["after_down"]["leftovers"]) + r["after_down"]["host_xfrm_states"]
        rows.append(
            [
                r["topology"],
                ",".join(r["dataplane"]),
                str(r["rekeys"]),
                str(r["sent"]),
                str(r["lost"]),
                str(r["lost_outside_qm_window"]),
                f"{r['qm_window_longest_s']:.3f}",
                str(r["qm_lost_most"]),
                str(left),
            ]
        )
    print(format_table(rows))
    for r in results:
        mid_s = r["rss_series"][len(r["rss_series"]) // 2]["t_s"]
        print(
            f"\n{r['topology']} ({','.join(r['dataplane'])}): RSS KiB start -> "
            f"half way ({mid_s:.0f} s) -> end"
        )
        for k, (a, b) in r["rss_kib"].items():
            print(f"  {k:<22} {a:>7} -> {r['rss_kib_mid'][k]:>7} -> {b}")
        print(f"  SAs start {r['sas']['start']}\n  SAs end   {r['sas']['end']}")
        if r["rekeys_failed"]:
            print("  rekeys that failed: " + "; ".join(r["rekeys_failed"]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
