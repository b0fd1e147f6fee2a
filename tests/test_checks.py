"""Convergence checks that need no daemons: reading list-sas answers."""

from __future__ import annotations

from lab.observe.convergence import shared_reqids


def sa(*children: tuple[str, str, str]) -> dict:
    return {
        "state": "ESTABLISHED",
        "child-sas": {
            f"{name}-{i}": {"name": name, "state": state, "reqid": reqid}
            for i, (name, state, reqid) in enumerate(children)
        },
    }


def test_two_tunnels_sharing_a_reqid_is_a_problem() -> None:
    # As seen on cgw after a partition with dynamic reqids: both CHILD_SAs got reqid 1.
    sas = {
        "cgw": {
            "tunnel1": sa(("tunnel1", "INSTALLED", "1")),
            "tunnel2": sa(("tunnel2", "INSTALLED", "1")),
        },
        "vgw1": {"tunnel1": sa(("tunnel1", "INSTALLED", "1"))},
    }
    problems = shared_reqids(sas)
    assert [(p.node, p.tunnel, p.text) for p in problems] == [
        ("cgw", "tunnel1", "tunnels tunnel1, tunnel2 share reqid 1 on cgw")
    ]


def test_a_rekeyed_child_keeps_its_reqid_and_other_nodes_do_not_count() -> None:
    # A rekey has two SAs of one tunnel with one reqid; other nodes number on their own.
    sas = {
        "cgw": {
            "tunnel1": sa(("tunnel1", "INSTALLED", "1"), ("tunnel1", "INSTALLED", "1")),
            "tunnel2": sa(("tunnel2", "INSTALLED", "2"), ("tunnel2", "REKEYED", "1")),
        },
        "vgw2": {"tunnel2": sa(("tunnel2", "INSTALLED", "1"))},
    }
    assert shared_reqids(sas) == []
