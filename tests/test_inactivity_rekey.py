"""Inactivity and its per-IKE-version defaults, acquire-relay parsing, rekey bookkeeping.

Topologies are variants of the shipped tray BGP topology (see topo_util), loaded like a
user's file; the rekey helpers are checked against list-sas answers shaped like charon's.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import pytest
from test_render import swanctl
from topo_util import TOPOLOGIES, put, variant, write

from lab.core.errors import LabError, TopologyError
from lab.daemons.charon import Charon
from lab.ops.acquire import dropped_reqid, libipsec_raises_acquires, version_tuple
from lab.ops.rekey import (
    attribute,
    carried,
    child_rekeyed,
    ike_rekeyed,
    lost_send_times,
    sa_view,
)
from lab.topology import load_lab
from lab.topology.resolve import default_start_action

SHIPPED = sorted(p.name for p in TOPOLOGIES.glob("*.yaml"))


def _lab(tmp: Path, *edits):
    return load_lab(write(tmp, "t", variant(*edits)))


# --- the setting -----------------------------------------------------------------------------


@pytest.mark.parametrize("given, seconds", [(5, 5), ("5s", 5), ("2m", 120), (0, 0)])
def test_inactivity_is_a_duration(tmp_path: Path, given, seconds) -> None:
    lab = _lab(tmp_path, put("tunnel_defaults.inactivity", given))
    for t in lab.tunnels.values():
        assert t.provider.inactivity == t.customer.inactivity == seconds


def test_inactivity_default_off_and_per_side(tmp_path: Path) -> None:
    lab = _lab(tmp_path, put("tunnels.tunnel1.customer", {"node": "cgw", "inactivity": 30}))
    t1, t2 = lab.tunnels["tunnel1"], lab.tunnels["tunnel2"]
    assert (t1.provider.inactivity, t1.customer.inactivity) == (0, 30)
    assert (t2.provider.inactivity, t2.customer.inactivity) == (0, 0)


@pytest.mark.parametrize("bad", [-1, "soon", True])
def test_inactivity_rejects_non_durations(tmp_path: Path, bad) -> None:
    with pytest.raises(TopologyError, match="inactivity"):
        _lab(tmp_path, put("tunnel_defaults.inactivity", bad))


def test_inactivity_rendered_on_every_child_sa(tmp_path: Path) -> None:
    # IKEv1 with BGP: two CHILD_SAs per tunnel (inside /32s, routed prefixes).
    lab = _lab(tmp_path, put("tunnel_defaults.ike", 1), put("tunnel_defaults.inactivity", "45s"))
    for node in ("vgw1", "cgw"):
        for conn in swanctl(lab, node)["connections"].values():
            assert len(conn["children"]) == 2
            assert {c["inactivity"] for c in conn["children"].values()} == {"45s"}


def test_no_inactivity_line_when_off(tmp_path: Path) -> None:
    lab = _lab(tmp_path)
    for node in ("vgw1", "cgw"):
        for conn in swanctl(lab, node)["connections"].values():
            assert all("inactivity" not in c for c in conn["children"].values())


# --- start_action defaults: Tray's IKEv1 / IKEv2 rule -------------------------------------------


@pytest.mark.parametrize(
    "role, ike, inactivity, expected",
    [
        ("customer", 1, 0, "start"),
        ("customer", 1, 30, "start"),
        ("customer", 2, 0, "start"),
        ("customer", 2, 30, "start"),
        ("provider", 1, 30, "trap"),  # IKEv1: the provider re-initiates on traffic
        ("provider", 1, 0, "none"),  # no inactivity: a trap would only hold failover routes
        ("provider", 2, 30, "none"),  # IKEv2: keeping it up is the customer's job
        ("provider", 2, 0, "none"),
    ],
)
def test_default_start_action(role, ike, inactivity, expected) -> None:
    assert default_start_action(role, ike, inactivity) == expected


@pytest.mark.parametrize("ike, provider_action", [(1, "trap"), (2, "none")])
def test_defaults_rendered(tmp_path: Path, ike: int, provider_action: str) -> None:
    lab = _lab(tmp_path, put("tunnel_defaults.ike", ike), put("tunnel_defaults.inactivity", 30))
    for conn in swanctl(lab, "vgw1")["connections"].values():
        assert {c["start_action"] for c in conn["children"].values()} == {provider_action}
    for conn in swanctl(lab, "cgw")["connections"].values():
        assert {c["start_action"] for c in conn["children"].values()} == {"start"}


def test_explicit_start_action_wins(tmp_path: Path) -> None:
    lab = _lab(
        tmp_path,
        put("tunnel_defaults.ike", 1),
        put("tunnel_defaults.inactivity", 30),
        put("tunnels.tunnel1.provider", {"node": "vgw1", "start_action": "none"}),
    )
    assert lab.tunnels["tunnel1"].provider.start_action == "none"
    assert lab.tunnels["tunnel2"].provider.start_action == "trap"


@pytest.mark.parametrize("topology", SHIPPED)
def test_shipped_labs_keep_their_start_actions(topology: str) -> None:
    lab = load_lab(TOPOLOGIES / topology)
    for t in lab.tunnels.values():
        assert (t.provider.start_action, t.customer.start_action) == ("none", "start")
        assert t.provider.inactivity == t.customer.inactivity == 0


# --- acquire relay ----------------------------------------------------------------------------


def test_dropped_reqid() -> None:
    assert dropped_reqid("could not find an outbound IPsec SA for reqid {7}, dropping packet") == 7
    assert (
        dropped_reqid(
            "could not find an outbound IPsec SA for reqid {12}, dropping packet "
            "and triggering acquire"
        )
        == 12
    )
    assert dropped_reqid("CHILD_SA tunnel1{7} established") is None


@pytest.mark.parametrize(
    "version, acquires",
    [
        ("5.9.8", False),
        ("5.9.10", False),
        ("5.9.11", True),
        ("5.9.14", True),
        ("6.0.1", True),
        ("5.9.8dr1", False),
    ],
)
def test_libipsec_acquires_since_5_9_11(version: str, acquires: bool) -> None:
    assert libipsec_raises_acquires(version) is acquires


def test_version_tuple() -> None:
    assert version_tuple("5.9.8") == (5, 9, 8)
    assert version_tuple(" 6.0.1rc2") == (6, 0, 1)
    assert version_tuple("unknown") == ()


# --- Charon.rekey: what goes to vici -----------------------------------------------------------


class _Session:
    def __init__(self, answer: dict) -> None:
        self.answer, self.sent = answer, []

    def rekey(self, args: dict) -> dict:
        self.sent.append(args)
        return self.answer


def _charon(session: _Session) -> Charon:
    charon = object.__new__(Charon)
    charon.node = "gw"

    @contextmanager
    def fake():
        yield session

    charon.session = fake  # type: ignore[method-assign]
    return charon


def test_rekey_sends_vici_selectors_as_given() -> None:
    session = _Session({"success": b"yes", "matches": b"2"})
    charon = _charon(session)
    assert charon.rekey(child="tunnel1-1", child_id=7) == 2
    assert charon.rekey(ike_id=3) == 2
    assert charon.rekey(ike="tunnel1", reauth=True) == 2
    assert session.sent == [
        {"child": "tunnel1-1", "child-id": "7"},
        {"ike-id": "3"},
        {"ike": "tunnel1", "reauth": "yes"},
    ]


def test_rekey_needs_a_selector() -> None:
    with pytest.raises(LabError, match="selector"):
        _charon(_Session({})).rekey()


# --- rekey bookkeeping ----------------------------------------------------------------------------


def _child(name: str, uid: int, spi_in: str, state: str = "INSTALLED") -> dict:
    return {
        "name": name,
        "uniqueid": str(uid),
        "reqid": "1",
        "state": state,
        "spi-in": spi_in,
        "spi-out": spi_in[::-1],
        "packets-in": "10",
    }


def _ike(uid: int, spis: tuple[str, str], children: list[dict], state: str = "ESTABLISHED") -> dict:
    return {
        "tunnel1": {
            "uniqueid": str(uid),
            "state": state,
            "initiator-spi": spis[0],
            "responder-spi": spis[1],
            "child-sas": {f"{c['name']}-{c['uniqueid']}": c for c in children},
        }
    }


def test_sa_view_takes_the_newest() -> None:
    sas = [
        _ike(1, ("a", "b"), [], state="REKEYING"),
        _ike(3, ("c", "d"), [_child("tunnel1", 4, "old", "REKEYED"), _child("tunnel1", 5, "new")]),
        {"tunnel2": {"uniqueid": "9", "state": "ESTABLISHED", "child-sas": {}}},
    ]
    view = sa_view(sas, "tunnel1")
    assert (view.ike_id, view.ike_state, view.ike_spis) == (3, "ESTABLISHED", ("c", "d"))
    assert view.installed["tunnel1"].spi_in == "new"
    assert view.spis == {"new"} and view.ike_children == {"tunnel1"}
    assert sa_view([], "tunnel1").ike_id is None


def test_child_rekey_complete_only_when_old_sa_is_gone() -> None:
    before = sa_view([_ike(1, ("a", "b"), [_child("tunnel1", 1, "s1")])], "tunnel1")
    both = sa_view(
        [_ike(1, ("a", "b"), [_child("tunnel1", 1, "s1"), _child("tunnel1", 2, "s2")])], "tunnel1"
    )
    done = sa_view(
        [_ike(1, ("a", "b"), [_child("tunnel1", 1, "s1", "REKEYED"), _child("tunnel1", 2, "s2")])],
        "tunnel1",
    )
    assert not child_rekeyed(before, before, ["tunnel1"])
    assert not child_rekeyed(before, both, ["tunnel1"])  # old one still installed
    assert child_rekeyed(before, done, ["tunnel1"])
    assert not child_rekeyed(before, done, ["tunnel1", "tunnel1-2"])  # one child missing


def test_ike_rekey_complete_when_new_sa_holds_the_children() -> None:
    kids = [_child("tunnel1", 1, "s1")]
    before = sa_view([_ike(1, ("a", "b"), kids)], "tunnel1")
    empty = sa_view([_ike(1, ("a", "b"), kids, "REKEYING"), _ike(2, ("c", "d"), [])], "tunnel1")
    moved = sa_view([_ike(1, ("a", "b"), [], "REKEYING"), _ike(2, ("c", "d"), kids)], "tunnel1")
    assert not ike_rekeyed(before, before, ["tunnel1"])
    assert not ike_rekeyed(before, empty, ["tunnel1"])  # children not adopted yet
    assert ike_rekeyed(before, moved, ["tunnel1"])


def test_lost_probes_are_charged_to_the_rekey_before_them() -> None:
    assert attribute([0.5, 10.0, 10.5, 19.995, 30.0], [10.0, 20.0], 0.02) == [2, 2]
    assert attribute([], [1.0], 0.02) == [0]


def test_lost_send_times_placed_by_the_replies_around_them() -> None:
    # Replies to 2, 4 and 5 (half a second after the probe's start: ping takes a while to
    # start); 1, 3 and 6 lost.
    output = "\n".join(
        f"[{100.5 + s * 0.02:.6f}] 64 bytes from 10.0.0.1: icmp_seq={s} ttl=62" for s in (2, 4, 5)
    )
    assert lost_send_times(output, 100.0, 0.02, 6) == pytest.approx([100.52, 100.56, 100.62])
    assert lost_send_times("", 100.0, 0.02, 2) == pytest.approx([100.0, 100.02])


def test_carried_counts_per_sa_and_ignores_vanished_ones() -> None:
    start = {
        ("tunnel1", "cgw", "old"): 500,
        ("tunnel1", "vgw1", "o2"): 500,
        ("tunnel2", "vgw2", "x"): 10,
    }
    # The old SAs are gone (their 500 do not count against the new ones); replies came
    # back over tunnel 2.
    now = {
        ("tunnel1", "cgw", "new"): 30,
        ("tunnel1", "vgw1", "n2"): 3,
        ("tunnel2", "vgw2", "x"): 37,
    }
    assert carried(start, now, "tunnel1", "cgw", {"vgw1", "vgw2"}, enough=25)
    assert not carried(start, now, "tunnel1", "cgw", {"vgw1", "vgw2"}, enough=31)
    assert not carried(start, now, "tunnel2", "cgw", {"vgw1", "vgw2"}, enough=25)
