"""A continuous probe between two hosts: what a customer's traffic sees during a fault.

ICMP echo every 20 ms with sequence numbers (iputils ping, timestamps on), for a bounded
time. The result gives loss, the longest outage window with its start and end, and which
tunnel delivered the traffic before and after a marked moment (SA in-counters: only
decrypted packets count, so a dead SA still encrypting into the void does not).
"""

from __future__ import annotations

import itertools
import signal
import time
from dataclasses import dataclass, field

from lab.core.errors import LabError
from lab.observe import events
from lab.observe.events import Event
from lab.ops.ping import ping_argv, ping_summary, replies
from lab.ops.traffic import packets
from lab.session.handle import RunningLab

REPLY_WAIT = 1  # seconds ping waits for a reply (-W) before it calls a request lost
DIRECTIONS = ("to customer", "to provider")


@dataclass(frozen=True)
class Outage:
    start: float  # last reply before the gap (epoch seconds)
    end: float  # first reply after it, or the end of the probe
    lost: int
    recovered: bool

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class ProbeResult:
    src: str
    dst: str
    interval: float
    started: float
    ended: float
    sent: int
    received: int
    longest: Outage | None
    # direction ("to customer" / "to provider") -> tunnel -> packets decrypted
    delivered_before: dict[str, dict[str, int]] = field(default_factory=dict)
    delivered_after: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def loss(self) -> float:
        return 100.0 * (self.sent - self.received) / self.sent if self.sent else 100.0

    @property
    def outage(self) -> float:
        return self.longest.seconds if self.longest else 0.0

    @property
    def carriers_before(self) -> dict[str, str | None]:
        """direction -> the tunnel that delivered most of it before the mark."""
        return {d: _busiest(t) for d, t in self.delivered_before.items()}

    @property
    def carriers_after(self) -> dict[str, str | None]:
        return {d: _busiest(t) for d, t in self.delivered_after.items()}

    def summary(self) -> str:
        out = (
            f"{self.src} -> {self.dst}: {self.sent} sent, {self.loss:.1f}% lost, "
            f"longest outage {self.outage:.2f}s"
        )
        if self.longest:
            out += (
                f" ({_clock(self.longest.start)} .. {_clock(self.longest.end)}"
                f"{'' if self.longest.recovered else ', not recovered'})"
            )
        moves = ", ".join(
            f"{d} {self.carriers_before.get(d)} -> {self.carriers_after.get(d)}" for d in DIRECTIONS
        )
        return out + f"; carriers before -> after: {moves}"


def _busiest(delivered: dict[str, int]) -> str | None:
    best = max(delivered.items(), key=lambda kv: kv[1], default=(None, 0))
    return best[0] if best[1] > 0 else None


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t)) + f".{int(t % 1 * 1000):03d}"


def parse(
    output: str, started: float, ended: float, interval: float = 0.02, stopped: bool = False
) -> tuple[int, int, Outage | None]:
    """(sent, received, longest outage) from ``ping -D -O`` output.

    A probe ``stopped`` early (SIGINT) has no verdict yet on the requests it sent within
    the reply wait (``-W``) before it ended: those after the last reply are left out,
    neither sent nor lost. Older unanswered ones still count as lost.
    """
    answered = replies(output)
    summary = ping_summary(output)
    sent = summary[0] if summary else max(answered, default=0)
    if stopped and answered:
        last = max(answered)
        undecided = ended - REPLY_WAIT
        while sent > last and answered[last] + (sent - last) * interval > undecided:
            sent -= 1
    # Gaps between consecutive replies, plus the probe's two ends.
    points = [(0, started), *sorted(answered.items()), (sent + 1, ended)]
    longest = None
    for (seq_a, t_a), (seq_b, t_b) in itertools.pairwise(points):
        lost = seq_b - seq_a - 1
        if lost <= 0:
            continue
        gap = Outage(start=t_a, end=t_b, lost=lost, recovered=seq_b <= sent)
        if longest is None or gap.seconds > longest.seconds:
            longest = gap
    return sent, len(answered), longest


class Probe:
    """Start with ``Probe(lab, src, dst, seconds).start()``, ``mark()`` when you break
    something, ``finish()`` for the result. Always bounded: ping stops by itself."""

    def __init__(
        self, running: RunningLab, src: str, dst: str, seconds: float, interval: float = 0.02
    ) -> None:
        self.running, self.src, self.dst = running, src, dst
        self.seconds, self.interval = seconds, interval
        self._proc = None
        self._stopped = False
        self._counters: list[tuple[float, dict]] = []

    def start(self) -> Probe:
        self.count = count = max(1, int(self.seconds / self.interval))
        self._counters.append((time.time(), packets(self.running)))
        self.started = time.time()
        # Bounded by the count (and finish()'s timeout).
        self._proc = self.running.runtime.background(
            self.src,
            ping_argv(self.dst, count=count, interval=self.interval, wait=REPLY_WAIT),
        )
        return self

    def stop(self) -> None:
        """End the probe early (ping stops at SIGINT and still prints its summary)."""
        if self._proc is not None and self._proc.exit_code is None:
            self._proc.stop(signal.SIGINT)
            self._stopped = True

    @property
    def active(self) -> bool:
        """Started and not ended yet."""
        return self._proc is not None and self._proc.exit_code is None

    def progress(self) -> tuple[int, int, float]:
        """(sent, answered, seconds since the last reply) so far, for a live view: read
        from what ping has printed up to now."""
        if self._proc is None:
            raise LabError("probe not started")
        now = time.time()
        answered = replies(self._proc.output())
        sent = min(self.count, int((now - self.started) / self.interval) + 1)
        last = max(answered.values(), default=self.started)
        return sent, len(answered), max(0.0, now - last)

    def mark(self) -> float:
        """Split the carrier accounting into before and after now (e.g. the fault)."""
        now = time.time()
        self._counters.append((now, packets(self.running)))
        return now

    def finish(self, until: float | None = None) -> ProbeResult:
        """The result, once ping has ended. ``until`` (epoch seconds): end it once every
        request sent before that moment has had its reply wait, so the window up to it is
        decided and nothing is probed beyond what the caller asked for."""
        if self._proc is None:
            raise LabError("probe not started")
        if until is not None:
            left = until + REPLY_WAIT - time.time()
            if left > 0 and self._proc.wait(timeout=left) is None:
                self.stop()
        try:
            if self._proc.wait(timeout=self.seconds + 10) is None:
                raise LabError(
                    f"probe {self.src} -> {self.dst} did not end within {self.seconds + 10:g}s"
                )
            output = self.output = self._proc.output()
        finally:
            self._proc.stop(signal.SIGKILL)
        ended = time.time()
        self._counters.append((ended, packets(self.running)))
        sent, received, longest = parse(output, self.started, ended, self.interval, self._stopped)
        first, middle, last = (self._counters[0][1], self._counters[-2][1], self._counters[-1][1])
        result = ProbeResult(
            self.src,
            self.dst,
            self.interval,
            self.started,
            ended,
            sent,
            received,
            longest,
            self._delivered(first, middle),
            self._delivered(middle, last),
        )
        self._record(result)
        return result

    def _record(self, r: ProbeResult) -> None:
        """The probe's outage, as two events at the times it began and ended."""
        lab, where = self.running.name, f"{self.src} -> {self.dst}"
        if r.longest is not None:
            mono = time.monotonic() - (time.time() - r.longest.start)
            events.record(lab, Event(kind="outage", node=self.src, wall=r.longest.start,
                                     mono=mono, text=f"{where}: replies stop"))  # fmt: skip
            if r.longest.recovered:
                events.record(lab, Event(
                    kind="recovered", node=self.src, wall=r.longest.end,
                    mono=mono + r.longest.seconds,
                    text=f"{where}: replies again after {r.longest.seconds:.2f}s "
                    f"({r.longest.lost} lost)",
                ))  # fmt: skip
        events.record(lab, Event(kind="probe", node=self.src, text=r.summary()))

    def _delivered(self, before: dict, after: dict) -> dict[str, dict[str, int]]:
        """Packets each tunnel decrypted between two counter samples, per direction: what
        the customer's gateway decrypted went to the customer, and the other way round."""
        out: dict[str, dict[str, int]] = {d: {} for d in DIRECTIONS}
        for (tunnel, node), (pkts_in, _) in after.items():
            previous = before.get((tunnel, node), (0, 0))[0]
            # A restarted charon counts from zero again.
            got = pkts_in - previous if pkts_in >= previous else pkts_in
            customer = self.running.lab.tunnels[tunnel].customer.node == node
            direction = DIRECTIONS[0] if customer else DIRECTIONS[1]
            out[direction][tunnel] = out[direction].get(tunnel, 0) + got
        return out

    def __enter__(self) -> Probe:
        return self.start()

    def __exit__(self, *exc) -> None:
        if self._proc is not None:
            self._proc.stop(signal.SIGKILL)
            self._proc.wait(5)
