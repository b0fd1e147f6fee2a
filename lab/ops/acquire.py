"""Acquires for trap policies where the data plane raises none.

A trap policy (``start_action = trap``) makes charon initiate a CHILD_SA when traffic
matching it finds no SA: the kernel raises an *acquire*, charon's trap manager initiates.
That is how a provider re-initiates "on interesting traffic" after inactivity closed the
SA (Tray's IKEv1 rule).

strongSwan 5.9.8's userspace data plane (kernel-libipsec, what this project's machines run)
never raises an acquire: ``src/libipsec/ipsec_processor.c`` finds the trap policy for an
outbound packet, finds no SA for its reqid, logs "could not find an outbound IPsec SA for
reqid {N}, dropping packet" and drops it ("TODO-IPSEC: send an acquire to upper layer").
strongSwan 5.9.11 added the acquire (commit 9192ef1620, "ipsec-processor: Trigger acquire
if no matching outbound SA is found"). The trap policy itself works: it is installed, its
route into ``ipsec0`` is installed, the packet reaches libipsec; only the acquire is missing.

``AcquireRelay`` stands in for it while a scenario runs: it listens to charon's own log
(vici ``log`` events, so it needs no access to the log file) and answers that line as the
trap manager answers an acquire, by initiating the trapped CHILD_SA (once per reqid until
it is up, as the kernel holds back repeated acquires). Where the data plane does raise
acquires (kernel ESP, or strongSwan 5.9.11 and later) it is not needed: see
``raises_acquires``.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from dataclasses import dataclass

from lab.core.errors import LabError
from lab.daemons import dataplane
from lab.session.handle import RunningLab

NO_SA = re.compile(r"could not find an outbound IPsec SA for reqid \{(\d+)\}")
FIRST_WITH_ACQUIRES = (5, 9, 11)  # libipsec raises acquires from this release on


def version_tuple(version: str) -> tuple[int, ...]:
    """``"5.9.8"`` -> (5, 9, 8); trailing text such as ``"5.9.8dr1"`` is ignored."""
    m = re.match(r"(\d+(?:\.\d+)*)", version.strip())
    return tuple(int(p) for p in m.group(1).split(".")) if m else ()


def libipsec_raises_acquires(version: str) -> bool:
    return version_tuple(version) >= FIRST_WITH_ACQUIRES


def raises_acquires(running: RunningLab, node: str) -> bool:
    """Does traffic hitting a trap policy on ``node`` make charon initiate by itself?"""
    if running.dataplane(node) != dataplane.USERSPACE:
        return True
    with running.charon(node).session() as s:
        version = s.version()["version"].decode()
    return libipsec_raises_acquires(version)


def dropped_reqid(message: str) -> int | None:
    """The reqid libipsec names when it drops a packet for want of an SA, else None."""
    m = NO_SA.search(message)
    return int(m.group(1)) if m else None


@dataclass(frozen=True)
class Acquire:
    at: float  # epoch seconds the relay saw the drop
    reqid: int
    children: tuple[str, ...]  # what it initiated
    error: str | None = None


class AcquireRelay:
    """``with AcquireRelay(running, node) as relay:`` -- while the block runs, a packet
    that libipsec drops on a trap policy of ``node`` makes ``node`` initiate the CHILD_SA,
    as an acquire would. ``relay.acquires`` lists what it did."""

    def __init__(self, running: RunningLab, node: str, initiate_timeout: float = 10) -> None:
        self.running, self.node = running, node
        self.charon = running.charon(node)
        self.initiate_timeout = initiate_timeout
        self.acquires: list[Acquire] = []
        self._reqids: dict[int, str] = {}  # reqid -> CHILD_SA name, learnt while SAs are up
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._watch = None

    # CHILD_SAs and trap policies, from vici ------------------------------------------------
    def _installed(self) -> dict[int, str]:
        """reqid -> name of each installed CHILD_SA (and remember the mapping)."""
        out = {}
        for sa in self.charon.ike_sas().values():
            for child in sa.get("child-sas", {}).values():
                if child.get("state") == "INSTALLED" and "reqid" in child:
                    out[int(child["reqid"])] = child["name"]
        self._reqids.update(out)
        return out

    def trapped(self) -> list[str]:
        """Names of the CHILD_SAs ``node`` has trap policies for."""
        with self.charon.session() as s:
            policies = [dict(p) for p in s.list_policies({"trap": "yes"})]
        return sorted({p[k]["child"].decode() for p in policies for k in p})

    # the relay ---------------------------------------------------------------------------------
    def __enter__(self) -> AcquireRelay:
        self._installed()
        self._watch = self.charon.watch(["log"])
        events = self._watch.__enter__()
        self._thread = threading.Thread(
            target=self._run, args=(events,), name=f"acquire-relay-{self.node}", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.initiate_timeout + 2)
        if self._watch is not None:
            self._watch.__exit__(None, None, None)

    def _run(self, events: queue.Queue) -> None:
        while not self._stop.is_set():
            try:
                _, body = events.get(timeout=0.1)
            except queue.Empty:
                continue
            reqid = dropped_reqid(body.get("msg", ""))
            if reqid is not None:
                self._acquire(reqid)

    def _acquire(self, reqid: int) -> None:
        if reqid in self._installed():
            return  # a packet dropped before the SA came up: the acquire is answered
        trapped = self.trapped()
        if reqid in self._reqids and self._reqids[reqid] in trapped:
            children: list[str] = [self._reqids[reqid]]
        else:  # never saw this reqid up: every trapped CHILD_SA that is down
            up = set(self._installed().values())
            children = [c for c in trapped if c not in up]
        if not children:
            return
        error = None
        try:
            for child in children:
                self.charon.initiate(child, timeout_ms=int(self.initiate_timeout * 1000))
        except LabError as exc:
            error = str(exc)
        self.acquires.append(Acquire(time.time(), reqid, tuple(children), error))
