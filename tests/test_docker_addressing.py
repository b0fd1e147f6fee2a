"""The stand-in subnets Docker books for a lab's segments: big enough for the segment's
containers, clear of every other Docker network and of the lab's own networks."""

from __future__ import annotations

from ipaddress import IPv4Network as Net

import pytest

from lab.runtime.docker.runtime import SEGMENT_BLOCK, first_free, stand_in_prefix


@pytest.mark.parametrize(
    ("nodes", "prefix"), [(1, 29), (5, 29), (6, 28), (13, 28), (14, 27), (200, 24)]
)
def test_stand_in_holds_the_nodes_and_docker_s_three_addresses(nodes, prefix):
    assert stand_in_prefix(nodes) == prefix
    assert Net(f"100.64.0.0/{prefix}").num_addresses >= nodes + 3


def test_first_free_skips_what_is_booked_or_used_by_the_lab():
    booked = [Net("100.64.0.0/29"), Net("100.64.0.16/28")]
    assert first_free(SEGMENT_BLOCK, 29, booked) == Net("100.64.0.8/29")
    assert first_free(SEGMENT_BLOCK, 28, booked) == Net("100.64.0.32/28")
    # A lab that numbers its segments inside the block itself.
    assert first_free(SEGMENT_BLOCK, 29, [Net("100.64.0.0/16")]) == Net("100.65.0.0/29")


def test_a_full_block_has_nothing_free():
    assert (
        first_free(Net("100.64.0.0/28"), 29, [Net("100.64.0.0/29"), Net("100.64.0.8/29")]) is None
    )
