"""A running lab from the command line: drawn with its tunnels' live state, probed, failed
over.

Runbook: bring the Tray BGP lab up; draw it (both tunnels green); block tunnel 2's
gateways from each other until the provider has lost it; draw again (tunnel 2 not green);
clear. Probe app -> pc for 2 s (nothing lost); fail tunnel 1 by terminating its SA and
read the outage against its bound.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

from lab.cli import main
from lab.core.waits import wait_until
from lab.observe.status import collect
from lab.ops import faults
from lab.ops.failover import restore
from lab.report.graph import UP

pytestmark = pytest.mark.every_runtime  # the CLI reattaches to a running lab through its runtime

TOPOLOGY = "tray-bgp-ikev2.yaml"


def tunnel_colours(svg_path) -> dict[str, str]:
    """tunnel name -> the colour its edge label is drawn in."""
    out = {}
    for text in ET.parse(svg_path).getroot().iter():
        if text.tag.endswith("text") and (text.text or "").startswith("tunnel"):
            out[text.text] = text.get("fill")
    return out


def test_graph_of_a_running_lab_shows_tunnel_states(lab, tmp_path):
    svg = tmp_path / "up.svg"
    result = CliRunner().invoke(main, ["graph", "--lab", lab.name, "-o", str(svg)])
    assert result.exit_code == 0, result.output
    assert tunnel_colours(svg) == {"tunnel1": UP, "tunnel2": UP}

    faults.inject(lab, "block", a="vgw2", b="cgw", what="all")
    wait_until(
        lambda: {t.name: t.provider.ike_state for t in collect(lab).tunnels},
        lambda states: states["tunnel2"] != "ESTABLISHED",
        timeout=20,
        interval=0.5,
        what="vgw2 to declare cgw dead",
    )
    svg = tmp_path / "down.svg"
    assert CliRunner().invoke(main, ["graph", "--lab", lab.name, "-o", str(svg)]).exit_code == 0
    colours = tunnel_colours(svg)
    assert colours["tunnel1"] == UP and colours["tunnel2"] != UP
    restore(lab)


def test_probe_from_the_command_line(lab):
    result = CliRunner().invoke(main, ["probe", "app", "pc", "--for", "2s", "--lab", lab.name])
    assert result.exit_code == 0, result.output
    assert "app -> 172.16.1.100: " in result.output and "0.0% lost" in result.output


def test_failover_from_the_command_line(lab):
    result = CliRunner().invoke(
        main, ["failover", "tunnel1", "--by", "terminate", "--lab", lab.name]
    )
    print(result.output)
    assert result.exit_code == 0, result.output
    assert "within the bound: " in result.output and "re-converged" in result.output
