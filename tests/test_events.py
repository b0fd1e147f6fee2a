"""The event timeline's file and what the daemons' messages become (no lab)."""

from __future__ import annotations

import threading
import time

import pytest

from lab.observe import events
from lab.observe.events import Event, from_bgpd_log, from_vici


@pytest.fixture
def lab(tmp_path, monkeypatch):
    monkeypatch.setattr(events, "lab_dir", lambda name: tmp_path / name)
    (tmp_path / "l1").mkdir()
    return "l1"


def test_events_from_several_writers_are_whole_lines(lab):
    def write(who: str) -> None:
        for i in range(200):
            events.record(lab, Event(kind="fault", text=f"{who} {i} " + "x" * 300))

    threads = [threading.Thread(target=write, args=(w,)) for w in "abcd"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = events.read(lab)
    assert len(got) == 800 and all(e.kind == "fault" for e in got)


def test_an_oversized_event_is_still_one_line_of_json(lab):
    events.record(lab, Event(kind="bgp", text="t" * 9000, data={"big": "d" * 9000}))
    (got,) = events.read(lab)
    assert got.kind == "bgp" and got.data == {} and len(got.text) < events.MAX_LINE


def test_nothing_is_written_for_a_lab_that_is_gone(tmp_path, monkeypatch):
    monkeypatch.setattr(events, "lab_dir", lambda name: tmp_path / "gone")
    events.record("gone", Event(kind="fault", text="x"))
    assert events.read("gone") == []
    assert list(events.follow("gone")) == []


def test_follow_yields_what_is_there_then_stops_when_the_lab_goes(lab, tmp_path):
    events.record(lab, Event(kind="bgp", text="one"))
    stream = events.follow(lab, poll=0.01)
    assert next(stream).text == "one"
    events.record(lab, Event(kind="bgp", text="two"))
    assert next(stream).text == "two"
    (tmp_path / lab / events.EVENTS).unlink()
    (tmp_path / lab).rmdir()
    assert list(stream) == []


def test_vici_updown_and_rekey_events():
    child = {"name": "tunnel1", "spi-in": "c1", "spi-out": "c2"}
    sa = {"remote-host": "198.51.100.21", "state": "ESTABLISHED", "child-sas": {"t1-3": child}}
    (up,) = from_vici("vgw1", "ike-updown", {"up": "yes", "tunnel1": sa})
    assert (up.kind, up.node, up.tunnel) == ("ike-up", "vgw1", "tunnel1")
    assert "198.51.100.21" in up.text
    (down,) = from_vici("vgw1", "child-updown", {"tunnel1": sa})
    assert down.kind == "child-down" and "spi in c1, out c2" in down.text
    (rekey,) = from_vici("vgw1", "child-rekey", {"tunnel1": sa})
    assert rekey.kind == "child-rekey"
    assert from_vici("vgw1", "log", {"msg": "x"}) == []


@pytest.mark.parametrize(
    ("line", "text"),
    [
        (
            "2026/12/01 19:00:00.123 BGP: [M59KS-A3ZXZ] %ADJCHANGE: neighbor "
            "169.254.10.2(Unknown) in vrf default Up",
            "BGP 169.254.10.2 up",
        ),
        (
            "2026/12/01 19:00:09.001 BGP: [M59KS-A3ZXZ] %ADJCHANGE: neighbor 169.254.10.2"
            "(Unknown) in vrf default Down BGP Notification send",
            "BGP 169.254.10.2 down (BGP Notification send)",
        ),
        ("%ADJCHANGE: neighbor 10.10.0.11 Up", "BGP 10.10.0.11 up"),
    ],
)
def test_bgpd_neighbour_changes(line, text):
    event = from_bgpd_log("vgw1", line)
    assert event is not None and event.text == text and event.kind == "bgp"
    assert from_bgpd_log("vgw1", "BGP: something else") is None


def test_an_event_line_shows_wall_clock_and_time_since_the_start():
    e = Event(kind="fault", text="block vgw1 <-> cgw", node="vgw1", wall=0.5, mono=12.25)
    assert "+   2.250s" in e.line(t0=10.0) and "block vgw1 <-> cgw" in e.line()


def test_a_bgpd_line_logged_before_it_was_read_keeps_bgpd_time():
    logged = time.time() - 30
    stamp = time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(logged))
    old = from_bgpd_log("cgw", f"{stamp} BGP: %ADJCHANGE: neighbor 169.254.10.1(vgw1) Up")
    assert old is not None and abs(old.wall - logged) < 1.0
    assert abs((time.monotonic() - old.mono) - (time.time() - old.wall)) < 0.5
    now = time.strftime("%Y/%m/%d %H:%M:%S")
    live = from_bgpd_log("cgw", f"{now} BGP: %ADJCHANGE: neighbor 169.254.10.1(vgw1) Up")
    assert live is not None and abs(live.wall - time.time()) < 0.5  # read time: finer
