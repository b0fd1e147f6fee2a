"""Conformance throughput: forms per minute through ``vpnlab conformance`` on this machine.

    .venv/bin/python bench/forms.py [--forms N] [--jobs 1,2,3] [--runtimes netns,docker]
                                    [--examples tray-bgp,thredd,...]

Makes N forms from the shipped examples, or the ones named (each a customer of its own:
its own name and public IP), then, per runtime and per ``--jobs``, runs them all the way ``vpnlab
conformance DIR --jobs J`` does (every check, failover included, labs removed after) and
reports wall time, forms per minute and the speed-up over one job, all from one run of
this script. Needs root, like the labs.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import yaml
from common import ROOT, format_table  # also puts the repo on sys.path

from lab.conformance.batch import lab_names, run_all
from lab.core.shipped import PROFILES, shipped
from lab.runtime import choose
from lab.session.cleanup import leftovers


def make_forms(out: Path, count: int, names: list[str] | None = None) -> list[Path]:
    examples = sorted((shipped(PROFILES) / "examples").glob("*.yaml"))
    if names:
        examples = [e for e in examples if e.stem in names]
        if len(examples) != len(names):
            raise SystemExit(f"--examples: no such example among {names}")
    forms = []
    for i in range(count):
        data = yaml.safe_load(examples[i % len(examples)].read_text())
        data["customer"] = f"{data['customer']} {i}"
        ip = data["gateway_ip"].rsplit(".", 1)[0]
        data["gateway_ip"] = f"{ip}.{40 + i}"  # clear of the provider's .11/.12/.30/.80
        path = out / f"f{i:02}-{examples[i % len(examples)].stem}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        forms.append(path)
    return forms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--forms", type=int, default=6)
    ap.add_argument("--jobs", default="1,2,3")
    ap.add_argument("--runtimes", default="netns,docker")
    ap.add_argument("--examples", help="the example forms to use (their names), default all")
    ap.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "forms.json")
    args = ap.parse_args()
    rows = [["runtime", "jobs", "forms", "passed", "wall s", "forms/min", "speed-up"]]
    record = []
    with tempfile.TemporaryDirectory() as tmp:
        names = args.examples.split(",") if args.examples else None
        forms = make_forms(Path(tmp), args.forms, names)
        for runtime in args.runtimes.split(","):
            kind, _ = choose(runtime)
            base = None
            for jobs in (int(j) for j in args.jobs.split(",")):
                t0 = time.monotonic()
                reports = run_all(forms, None, runtime=kind, jobs=jobs, prefix=f"bf{jobs}")
                wall = time.monotonic() - t0
                per_min = 60 * len(forms) / wall
                base = base or per_min
                passed = sum(r.passed for r in reports)
                speedup = f"{per_min / base:.2f}x"
                rows.append(
                    [
                        kind,
                        str(jobs),
                        str(len(forms)),
                        str(passed),
                        f"{wall:.1f}",
                        f"{per_min:.2f}",
                        speedup,
                    ]
                )
                record.append(
                    {"runtime": kind, "jobs": jobs, "forms": len(forms), "passed": passed}
                    | {"wall": wall, "per_minute": per_min}
                )
                print(format_table(rows), flush=True)
                left = [x for n in lab_names(forms, f"bf{jobs}").values() for x in leftovers(n)]
                assert not left, f"left behind: {left}"
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(record, indent=2))
    print(format_table(rows))


if __name__ == "__main__":
    main()
