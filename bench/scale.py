"""Scale: one provider (two VPN gateways, a VPC router) and N customer sites, each with two
BGP-routed IKEv2 tunnels, in one lab; time to converged and memory, per N.

    .venv/bin/python bench/scale.py [--sites 10,25,50,100,200] [--runtime netns] [--json FILE]
    .venv/bin/python bench/scale.py --write 100 > sites100.yaml   # the topology only

Per N: the generated topology comes up (``bringup.up``, no event recorder: it is the lab
that is measured), then the bench reads the memory the machine lost (MemAvailable, before
and after) and the proportional (PSS) and resident (RSS) memory of every daemon, summed per
kind (charon, bgpd, zebra, staticd, mgmtd, watchfrr), before taking the lab down.
Addresses: the internet segment is 198.18.0.0/15 (the benchmarking range), customer LANs
10.128.0.0/9 in /24s, tunnel inside addresses 169.254.8.0/21 in /30s. Needs root, like the lab.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from ipaddress import IPv4Network
from pathlib import Path

import yaml
from common import format_table  # also puts the repo on sys.path

from lab.ops import bringup
from lab.session.cleanup import destroy_lab, leftovers
from lab.topology import load_lab

DAEMONS = ("charon", "bgpd", "zebra", "staticd", "mgmtd", "watchfrr")
INTERNET = IPv4Network("198.18.0.0/15")
LANS = IPv4Network("10.128.0.0/9")
INSIDE = IPv4Network("169.254.8.0/21")  # clear of the /30s AWS reserves; 512 tunnels


def topology(sites: int, name: str) -> dict:
    internet = list(INTERNET.hosts())
    lans = LANS.subnets(new_prefix=24)
    inside = INSIDE.subnets(new_prefix=30)
    topo: dict = {
        "name": name,
        "routing": "bgp",
        "segments": {"internet": str(INTERNET), "vpc": "10.10.0.0/24"},
        "sites": {
            "provider": {
                "provider": "tray",
                "asn": 64512,
                "nodes": {
                    "vpc-rtr": {"role": "router", "interfaces": {"vpc": "10.10.0.1"}},
                    "vgw1": {
                        "role": "vpn-gateway",
                        "interfaces": {"internet": str(internet[10]), "vpc": "10.10.0.11"},
                    },
                    "vgw2": {
                        "role": "vpn-gateway",
                        "interfaces": {"internet": str(internet[11]), "vpc": "10.10.0.12"},
                    },
                },
            }
        },
        "retransmit": {"timeout": 1, "tries": 2, "base": 1.5},
        "tunnel_defaults": {"ike": 2, "psk": "vpnlab-scale-key", "dpd": {"delay": "2s"}},
        "tunnels": {},
    }
    for i in range(sites):
        lan = next(lans)
        segment = f"lan{i}"
        topo["segments"][segment] = str(lan)
        topo["sites"][f"c{i}"] = {
            "asn": 65001 + i,
            "nodes": {
                f"cgw{i}": {
                    "role": "vpn-gateway",
                    "interfaces": {"internet": str(internet[100 + i]), segment: str(lan[1])},
                }
            },
        }
        for k, provider in enumerate(("vgw1", "vgw2"), start=1):
            topo["tunnels"][f"c{i}t{k}"] = {
                "provider": provider,
                "customer": f"cgw{i}",
                "inside": str(next(inside)),
            }
    return topo


def meminfo_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def daemon_rss() -> dict[str, tuple[int, int, int]]:
    """(processes, summed resident bytes, summed proportional bytes) per daemon kind, over
    the whole machine. RSS counts the shared libraries' pages in every process; PSS shares
    them out, so its sum is what the kind really costs."""
    kinds: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            comm = (proc / "comm").read_text().strip()
            if comm not in DAEMONS:
                continue
            rollup = (proc / "smaps_rollup").read_text().splitlines()
        except OSError:  # gone meanwhile
            continue
        fields = {f.split(":")[0]: int(f.split()[1]) * 1024 for f in rollup[1:] if "kB" in f}
        kinds[comm][0] += 1
        kinds[comm][1] += fields.get("Rss", 0)
        kinds[comm][2] += fields.get("Pss", 0)
    return {k: (n, rss, pss) for k, (n, rss, pss) in kinds.items()}


def one(sites: int, runtime: str, timeout: float) -> dict:
    name = f"scale{sites}-{os.getpid() % 10000}"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.yaml"
        path.write_text(yaml.safe_dump(topology(sites, name), sort_keys=False))
        lab = load_lab(path)
    baseline = daemon_rss()
    before = meminfo_available()
    result: dict = {"sites": sites, "tunnels": 2 * sites, "nodes": len(lab.nodes)}
    running = None
    phases: dict[str, float] = {}
    result["phases_s"] = phases
    t0 = time.monotonic()
    try:
        running = bringup.up(
            lab,
            timeout=timeout,
            runtime=runtime,
            record=False,
            progress=lambda phase, s: phases.__setitem__(phase, round(s, 2)),
        )
        result["converged_s"] = round(time.monotonic() - t0, 2)
        result["memory_used_mb"] = round((before - meminfo_available()) / 2**20)
        now = daemon_rss()
        result["daemons"] = {
            kind: {
                "processes": n - baseline.get(kind, (0, 0, 0))[0],
                "rss_mb": round((rss - baseline.get(kind, (0, 0, 0))[1]) / 2**20),
                "pss_mb": round((pss - baseline.get(kind, (0, 0, 0))[2]) / 2**20),
            }
            for kind, (n, rss, pss) in sorted(now.items())
        }
    except Exception as exc:  # recorded; the next N still runs
        result["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
    finally:
        t1 = time.monotonic()
        if running is not None:
            running.down()
        elif leftovers(lab.name):
            destroy_lab(lab.name)
        result["down_s"] = round(time.monotonic() - t1, 2)
    return result


def table(results: list[dict]) -> str:
    header = ["sites", "tunnels", "converged s", "memory MB", *(f"{d} MB" for d in DAEMONS)]
    # per daemon kind: proportional (PSS) MB, resident (RSS) in brackets
    rows = [header]
    for r in results:
        if "error" in r:
            rows.append([str(r["sites"]), str(r["tunnels"]), "FAILED", "-", *["-"] * len(DAEMONS)])
            continue
        per = [
            f"{k['pss_mb']} ({k['rss_mb']})" if (k := r["daemons"].get(d)) else "-" for d in DAEMONS
        ]
        rows.append(
            [
                str(r["sites"]),
                str(r["tunnels"]),
                f"{r['converged_s']:.1f}",
                str(r["memory_used_mb"]),
                *per,
            ]
        )
    errors = [f"  {r['sites']} sites: {r['error']}" for r in results if "error" in r]
    names = list(dict.fromkeys(p for r in results for p in r["phases_s"]))
    steps = [["sites", *names]] + [
        [str(r["sites"]), *(f"{r['phases_s'].get(p, 0):.2f}" for p in names)] for r in results
    ]
    return "\n".join([format_table(rows), *errors, "", "phases, s:", format_table(steps)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", default="10,25,50,100,200", help="N, comma-separated")
    parser.add_argument("--runtime", default="netns", choices=("netns", "docker"))
    parser.add_argument("--timeout", type=float, default=300.0, help="convergence timeout, s")
    parser.add_argument("--json", metavar="FILE", help="write the results here")
    parser.add_argument("--write", type=int, metavar="N", help="print the topology for N sites")
    args = parser.parse_args()
    if args.write:
        print(yaml.safe_dump(topology(args.write, f"scale{args.write}"), sort_keys=False))
        return 0
    if os.geteuid() != 0:
        parser.error("the lab needs root (network namespaces, daemons)")
    results = []
    for n in (int(s) for s in args.sites.split(",")):
        r = one(n, args.runtime, args.timeout)
        print(f"{n} sites: {r.get('converged_s', r.get('error'))}", file=sys.stderr, flush=True)
        results.append(r)
    print(
        f"scale, {args.runtime} runtime, {os.cpu_count()} CPUs, "
        f"{meminfo_available() // 2**20} MB available after"
    )
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
