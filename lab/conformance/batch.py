"""Many forms: a directory's forms, a CI shard of them, run side by side."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from lab.conformance.run import LabHook, Report, run
from lab.core.errors import InputError
from lab.providers.setup import lab_name


def forms_in(path: Path) -> list[Path]:
    """A form file, or every ``*.yaml``/``*.yml`` form in a directory, in name order."""
    if path.is_dir():
        found = sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
        if not found:
            raise InputError("(directory)", "holds no forms (*.yaml)", path)
        return found
    if not path.exists():
        raise InputError("(file)", "no such form or directory", path)
    return [path]


def parse_shard(text: str) -> tuple[int, int]:
    """``I/N`` -> (I, N), 1 <= I <= N."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise InputError("--shard", f"{text!r} is not I/N (e.g. 2/4)") from None
    if not 1 <= i <= n:
        raise InputError("--shard", f"{text}: I must be between 1 and N")
    return i, n


def shard(forms: list[Path], i: int, n: int) -> list[Path]:
    """The I-th of N slices, round robin over the name order: every form in exactly one
    slice, the slices within one form of each other in size."""
    return forms[i - 1 :: n]


def lab_names(forms: list[Path], prefix: str = "cf") -> dict[Path, str]:
    """A distinct lab name per form, so that runs side by side do not collide."""
    names: dict[Path, str] = {}
    for index, form in enumerate(forms, start=1):
        name = lab_name(form, prefix)
        if name in names.values():
            name = f"{name[:20]}-{index}"
        names[form] = name
    return names


def _one(args: tuple) -> Report:
    form, templates, runtime, keep, name, before_down = args
    return run(
        form,
        templates,
        runtime=runtime,
        keep=keep,
        name=name,
        progress=print,
        before_down=before_down,
    )


def run_all(
    forms: list[Path],
    templates: Path | None,
    *,
    runtime: str,
    keep: bool = False,
    jobs: int = 1,
    prefix: str = "cf",
    done: Callable[[Report], None] = lambda r: None,
    before_down: LabHook | None = None,
) -> list[Report]:
    """Every form's report, in the forms' order; ``jobs`` labs at a time, each in a
    process of its own (so ``before_down`` must pickle). Lab names are ``<prefix>-<form>``."""
    names = lab_names(forms, prefix)
    work = [(f, templates, runtime, keep, names[f], before_down) for f in forms]
    if jobs <= 1 or len(forms) == 1:
        reports = []
        for args in work:
            reports.append(_one(args))
            done(reports[-1])
        return reports
    by_form: dict[str, Report] = {}
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        for report in pool.map(_one, work):
            by_form[report.form] = report
            done(report)
    return [by_form[str(f)] for f in forms]
