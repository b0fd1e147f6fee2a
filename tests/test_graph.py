"""The topology drawn: Graphviz and Mermaid from a resolved lab, tunnels coloured by state."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

from lab.cli import main
from lab.core.errors import InputError
from lab.core.shipped import find_topology
from lab.observe.status import BgpStatus, ChildStatus, LabStatus, SideStatus, TunnelStatus
from lab.report.graph import DOWN, PARTLY, UP, dot, mermaid, tunnel_state, write
from lab.topology import load_lab

LAB = load_lab(find_topology("tray-bgp-nat"))


def side(node: str, ike: str = "ESTABLISHED", bgp: str | None = "Established") -> SideStatus:
    child = ChildStatus(
        name="t", state="INSTALLED", esp_proposal="x", encap=True, local_ts=[], remote_ts=[],
        bytes_in=0, bytes_out=0, packets_in=0, packets_out=0,
    )  # fmt: skip
    return SideStatus(
        node=node, address="1.2.3.4", ike_state=ike, ike_version=2,
        children=[child] if ike == "ESTABLISHED" else [],
        bgp=BgpStatus(state=bgp, prefixes_received=1, prefixes_sent=1) if bgp else None,
    )  # fmt: skip


def status(**states: tuple[SideStatus, SideStatus]) -> LabStatus:
    tunnels = [
        TunnelStatus(name=name, routing="bgp", provider=p, customer=c)
        for name, (p, c) in states.items()
    ]
    return LabStatus.model_construct(tunnels=tunnels)


def test_tunnel_state_from_both_sides():
    up = TunnelStatus(name="t", routing="bgp", provider=side("a"), customer=side("b"))
    assert tunnel_state(up) == "up"
    idle = up.model_copy(update={"customer": side("b", bgp="Active")})
    assert tunnel_state(idle) == "partly"
    down = up.model_copy(update={"provider": side("a", "DOWN"), "customer": side("b", "DOWN")})
    assert tunnel_state(down) == "down"


def test_dot_draws_sites_segments_addresses_and_tunnels():
    source = dot(LAB).source
    for site in ("cluster_tray", "cluster_acme", "cluster_public"):
        assert site in source
    assert "198.51.100.11" in source and "internet" in source
    assert '"vgw1" -- cgw' in source or "vgw1 -- cgw" in source
    assert "tunnel1\nbgp, IKEv2" in source


def test_running_lab_colours_each_tunnel_by_its_state():
    live = status(
        tunnel1=(side("vgw1"), side("cgw")),
        tunnel2=(side("vgw2", "DOWN", None), side("cgw", "CONNECTING", None)),
    )
    source = dot(LAB, live).source
    assert f'color="{UP}"' in source and f'color="{DOWN}"' in source
    assert PARTLY not in source
    text = mermaid(LAB, live)
    assert f"stroke:{UP}" in text and f"stroke:{DOWN}" in text


def test_mermaid_has_a_subgraph_per_site_and_an_edge_per_interface():
    text = mermaid(LAB)
    assert text.startswith("flowchart LR\n")
    assert text.count("subgraph ") == 3 and text.count("\n  end") == 3
    interfaces = sum(len(n.interfaces) for n in LAB.nodes.values())
    assert text.count(" ---|") == interfaces
    assert text.count(" -.-|") == len(LAB.tunnels)


def test_write_svg_png_and_mermaid(tmp_path):
    svg = ET.parse(write(LAB, tmp_path / "lab.svg")).getroot()
    assert svg.tag.endswith("svg")
    texts = {t.text for t in svg.iter() if t.tag.endswith("text")}
    assert {"vgw1", "cgw", "198.51.100.21"} <= texts
    assert (write(LAB, tmp_path / "lab.png")).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert write(LAB, tmp_path / "lab.mmd").read_text().startswith("flowchart")
    with pytest.raises(InputError, match="the format is the suffix"):
        write(LAB, tmp_path / "lab.jpg")


def test_graph_cli_draws_a_shipped_topology(tmp_path):
    result = CliRunner().invoke(main, ["graph", "thredd-static", "-o", str(tmp_path / "t.svg")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "t.svg").read_text().lstrip().startswith("<?xml")
