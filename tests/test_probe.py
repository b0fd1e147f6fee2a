"""Reading ``ping -D -O`` output: what was sent, answered and lost."""

from __future__ import annotations

from lab.ops.probe import parse


def output(answered: list[int], sent: int, t0: float = 100.0) -> str:
    lines = [f"[{t0 + s * 0.02:.6f}] 64 bytes from 10.0.0.1: icmp_seq={s} ttl=62" for s in answered]
    return "\n".join([*lines, f"{sent} packets transmitted, {len(answered)} received"])


def test_a_probe_that_ran_out_counts_every_unanswered_request() -> None:
    sent, received, longest = parse(output([1, 2, 3, 4], 5), 100.0, 101.2)
    assert (sent, received) == (5, 4)
    assert longest is not None and not longest.recovered


def test_a_stopped_probe_leaves_out_requests_still_awaiting_a_reply() -> None:
    # SIGINT 10 ms after request 5 went out: no verdict on it yet, so not lost.
    sent, received, longest = parse(output([1, 2, 3, 4], 5), 100.0, 100.11, stopped=True)
    assert (sent, received, longest) == (4, 4, None)


def test_a_stopped_probe_still_counts_requests_past_the_reply_wait() -> None:
    # Requests 3..60 unanswered; stopped at 101.23: those sent by 100.23 (the -W of
    # one second) are lost, the rest are still in flight.
    sent, received, longest = parse(output([1, 2], 60), 100.0, 101.23, stopped=True)
    assert received == 2
    assert sent == 11  # requests 3..11 went out by 100.22, 12 at 100.24
    assert longest is not None and longest.lost == 9
