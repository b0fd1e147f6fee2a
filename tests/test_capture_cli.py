"""`vpnlab capture` input checks (exit 2 naming the field) and the keys folder's shape."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from topo_util import TRAY_BGP

from lab.cli import main
from lab.core.errors import InputError
from lab.ops.capture import TARGET_FIELD, Target, keys_folder, target, tshark_line, write_private
from lab.topology import load_lab


@pytest.fixture(scope="module")
def tray():
    return load_lab(TRAY_BGP)


def test_a_segment_or_a_nodes_interface(tray) -> None:
    assert target(tray, "internet") == Target(None, "internet")
    assert target(tray, "cgw:lan") == Target("cgw", "lan")
    assert target(tray, "cgw:ipsec0") == Target("cgw", "ipsec0")  # a gateway's tunnel device
    assert str(target(tray, "vgw1:internet")) == "vgw1:internet"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("nowhere", "no segment 'nowhere' in lab tray-bgp-v2 (segments: internet, vpc, lan)"),
        ("ghost:eth0", "no node 'ghost' in lab tray-bgp-v2"),
        ("cgw:eth7", "node cgw has no interface 'eth7' (it has: internet, lan, ipsec0)"),
        ("pc:ipsec0", "node pc has no interface 'ipsec0' (it has: lan)"),
    ],
)
def test_a_bad_target_names_the_field_and_what_exists(tray, text: str, says: str) -> None:
    with pytest.raises(InputError) as exc:
        target(tray, text)
    assert exc.value.field == TARGET_FIELD
    assert says in str(exc.value)


def test_a_bad_duration_exits_2_naming_the_option() -> None:
    result = CliRunner().invoke(main, ["capture", "internet", "--for", "soon"])
    assert result.exit_code == 2
    assert "--for: 'soon' is not a duration" in result.output


def test_an_output_in_a_missing_directory_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "x.pcap"
    result = CliRunner().invoke(main, ["capture", "internet", "-o", str(missing)])
    assert result.exit_code == 2
    assert f"--output: directory {missing.parent} does not exist" in result.output


def test_keys_folder_is_private_and_the_tshark_line_points_at_it(tmp_path: Path) -> None:
    pcap = tmp_path / "my cap.pcap"
    folder = keys_folder(pcap)
    assert folder.name == "my cap.pcap.keys"
    (tmp_path / "my cap.pcap.keys").mkdir(mode=0o755)
    (folder / "ikev1_decryption_table").write_text("old")  # from an earlier run
    write_private(folder, {"esp_sa": "x\n", "preferences": "y\n"})
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert sorted(p.name for p in folder.iterdir()) == ["esp_sa", "preferences"]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in folder.iterdir())
    line = tshark_line(pcap, folder)
    assert line == f"WIRESHARK_CONFIG_DIR='{folder}' tshark -r '{pcap}'"
