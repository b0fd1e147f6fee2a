"""Where the suite's time goes: every test's time from the JUnit files a run wrote.

    .venv/bin/python bench/suite.py [FILE.xml ...]

Without files it reads what ``bash scripts/setup.sh test`` leaves: .test-results/*.xml
(the host runs) and .guest-results/junit.xml (the kernel data plane in the guest). Prints,
per file, the tests, their summed time and the ten slowest; then the time per scenario
module. Summed test time exceeds wall time where workers ran side by side (setup.sh prints
the wall time of each part).
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

from common import ROOT, format_table
from junitparser import JUnitXml

DEFAULT = [*sorted((ROOT / ".test-results").glob("*.xml")), ROOT / ".guest-results/junit.xml"]


def cases(path: Path) -> list[tuple[str, float, str]]:
    """(test id, seconds, verdict) for every test case in a JUnit file."""
    out = []
    for suite in JUnitXml.fromfile(str(path)):
        for case in suite:
            verdict = case.result[0].__class__.__name__.lower() if case.result else "passed"
            out.append((f"{case.classname}::{case.name}", case.time or 0.0, verdict))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path)
    files = [f for f in (parser.parse_args().files or DEFAULT) if f.exists()]
    if not files:
        raise SystemExit("no JUnit files: run 'bash scripts/setup.sh test' first")
    modules: dict[str, float] = defaultdict(float)
    for path in files:
        found = cases(path)
        total = sum(t for _, t, _ in found)
        print(f"\n{path}: {len(found)} tests, {total:.0f} s of test time")
        slowest = sorted(found, key=lambda c: -c[1])[:10]
        print(
            format_table(
                [["slowest", "s", "verdict"], *[[n, f"{t:.1f}", v] for n, t, v in slowest]]
            )
        )
        for name, t, _ in found:
            modules[f"{path.stem}: {name.split('::')[0]}"] += t
    rows = sorted(modules.items(), key=lambda m: -m[1])
    print()
    print(format_table([["module", "s"], *[[m, f"{t:.0f}"] for m, t in rows]]))


if __name__ == "__main__":
    main()
