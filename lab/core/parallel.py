"""Doing I/O-bound work side by side: most of vpnlab's time is waiting on the kernel, a
daemon or the Docker engine, node by node."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")
WORKERS = 8


def each(work: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``work(item)`` for every item at once; the results in item order. The first error is
    raised (after the others have finished)."""
    items = list(items)
    if len(items) <= 1:
        return [work(i) for i in items]
    with ThreadPoolExecutor(min(WORKERS, len(items))) as pool:
        return list(pool.map(work, items))


def together(jobs: Iterable[Callable[[], object]]) -> None:
    """Run different jobs at once, as ``each`` does one job over many items."""
    each(lambda job: job(), jobs)


def by_key(read: Callable[[str], R], keys: Iterable[str]) -> dict[str, R]:
    """``read(key)`` for every key at once, as a dict (e.g. one read per node)."""
    keys = list(keys)
    return dict(zip(keys, each(read, keys), strict=True))
