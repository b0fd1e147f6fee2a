"""`vpnlab import`: AWS configurations (XML, JSON, Generic text) and a customer's swanctl.conf
or ipsec.conf become a topology whose provider side is the aws profile; bad input is one
message naming the file and the field, exit 2, nothing written; no key leaves the env file
unless --reveal-secrets.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from lab.cli import main
from lab.core.errors import InputError, TopologyError
from lab.core.shipped import SAMPLES, shipped
from lab.importers.aws import parse_aws
from lab.importers.ipsec_conf import from_ipsec_conf, parse_secrets
from lab.importers.swanctl import from_swanctl
from lab.render.swanctl import swanctl_conf
from lab.testing.artefacts import files_holding
from lab.topology import load_lab
from lab.topology.profiles import load_profile

AWS = shipped(SAMPLES) / "aws"
CUSTOMER = shipped(SAMPLES) / "customer"
XML = AWS / "vpn-0a1b2c3d4e5f60718.xml"
TEXT = AWS / "vpn-0c0ffee0123456789.txt"
SWANCTL = CUSTOMER / "swanctl.conf"
MISMATCH = CUSTOMER / "swanctl-modp1536.conf"
IPSEC_CONF, IPSEC_SECRETS = CUSTOMER / "ipsec.conf", CUSTOMER / "ipsec.secrets"
XML_KEYS = ["sampleTunnelOne.key_4vpnlab", "sampleTunnelTwo.key_4vpnlab"]
TEXT_KEYS = ["staticSampleKey.one_2026", "staticSampleKey.two_2026"]
CONF_KEYS = ["ipsecConfSample.key1", "ipsecConfSample.key2"]


def run(*args: str):
    return CliRunner().invoke(main, ["import", *args], catch_exceptions=False)


# the AWS formats --------------------------------------------------------------------------
def test_xml_sample_reads_as_two_bgp_tunnels():
    conn = parse_aws(XML.read_text(), str(XML))
    assert (conn.format, conn.connection_id, conn.routing) == (
        "xml",
        "vpn-0a1b2c3d4e5f60718",
        "bgp",
    )
    t1, t2 = conn.tunnels
    assert (t1.ike, t1.ike_proposal, t1.esp_proposal) == (
        1,
        "aes128-sha1-modp1024",
        "aes128-sha1-modp1024",
    )
    assert (t1.ike_lifetime, t1.child_lifetime, t1.dpd_delay, t1.dpd_retries) == (
        28800,
        3600,
        10,
        3,
    )
    assert str(t1.vgw_inside) == "169.254.44.1/30" and str(t2.customer_inside) == "169.254.45.6/30"
    assert (t1.customer_asn, t1.vgw_asn, t1.hold) == (65010, 64512, 30)
    assert t1.psk.get_secret_value() == XML_KEYS[0]
    assert XML_KEYS[0] not in repr(t1)
    assert any("tcp_mss_adjustment" in w for w in conn.warnings)


def test_ike_version_comes_from_the_override_when_the_xml_has_none():
    assert parse_aws(XML.read_text(), "x.xml", ike=2).tunnels[0].ike == 2


def test_describe_vpn_connections_json_carries_the_xml():
    doc = {"VpnConnections": [{"CustomerGatewayConfiguration": XML.read_text()}]}
    conn = parse_aws(json.dumps(doc), "describe.json")
    assert len(conn.tunnels) == 2 and conn.format == "xml"


def test_generic_text_sample_reads_as_two_static_ikev2_tunnels():
    conn = parse_aws(TEXT.read_text(), str(TEXT))
    assert (conn.format, conn.connection_id, conn.routing) == (
        "text",
        "vpn-0c0ffee0123456789",
        "static",
    )
    t1, t2 = conn.tunnels
    assert (t1.ike, t1.ike_proposal, t1.esp_proposal) == (
        2,
        "aes256-sha256-modp2048",
        "aes256-sha256-modp2048",
    )
    assert str(t2.vgw_outside) == "203.0.113.212" and str(t1.customer_outside) == "198.51.100.30"
    assert [t.psk.get_secret_value() for t in conn.tunnels] == TEXT_KEYS


BAD_AWS = {
    "broken-xml": (lambda t: t.replace("</ike>", "", 1), "line "),
    "doctype": (
        lambda t: t.replace("<vpn_connection", '<!DOCTYPE x [<!ENTITY a "b">]><vpn_connection', 1),
        "DOCTYPE",
    ),
    "missing-tunnel": (
        lambda t: t[: t.index("<ipsec_tunnel>", t.index("</ipsec_tunnel>"))] + "</vpn_connection>",
        "ipsec_tunnel: 1 tunnel(s) found",
    ),
    "unknown-encryption": (
        lambda t: t.replace("<encryption_protocol>aes-128-cbc", "<encryption_protocol>rot13", 1),
        "ipsec_tunnel[1]/ike/encryption_protocol: unknown encryption algorithm 'rot13'",
    ),
    "unknown-dh-group": (
        lambda t: t.replace(
            "<perfect_forward_secrecy>group2", "<perfect_forward_secrecy>group99", 1
        ),
        "ipsec_tunnel[1]/ike/perfect_forward_secrecy: unknown Diffie-Hellman group 'group99'",
    ),
    "missing-psk": (
        lambda t: t.replace("<pre_shared_key>sampleTunnelTwo.key_4vpnlab</pre_shared_key>", ""),
        "ipsec_tunnel[2]/ike/pre_shared_key: missing",
    ),
    "reserved-inside-cidr": (
        lambda t: t.replace("169.254.44.", "169.254.5."),
        "tunnels.tunnel1.inside: aws profile: inside CIDR 169.254.5.0/30 is reserved",
    ),
    "bad-address": (
        lambda t: t.replace("<ip_address>203.0.113.202<", "<ip_address>203.0.113.999<"),
        "ipsec_tunnel[2]/vpn_gateway/tunnel_outside_address/ip_address",
    ),
}


@pytest.mark.parametrize("case", BAD_AWS)
def test_bad_aws_xml_names_file_and_field_and_writes_nothing(case, tmp_path):
    edit, expected = BAD_AWS[case]
    bad = tmp_path / "in" / "vpn.xml"
    bad.parent.mkdir()
    bad.write_text(edit(XML.read_text()))
    out = tmp_path / "out" / "lab.yaml"
    result = run("aws", str(bad), "-o", str(out))
    assert result.exit_code == 2, result.output
    assert str(bad) in result.output and expected in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not out.parent.exists()
    assert not any(k in result.output for k in XML_KEYS)


def test_xml_elements_the_lab_does_not_read_are_warned_about():
    text = XML.read_text().replace("<ike>", "<ike><replay_window>64</replay_window>", 1)
    assert "tunnel 1: ike/replay_window = 64: not modelled" in parse_aws(text, "x.xml").warnings


def test_generic_text_items_the_lab_does_not_read_are_warned_about(tmp_path):
    conn = parse_aws(TEXT.read_text(), str(TEXT))
    assert "tunnel 1: #3 inside tunnel interface mtu = 1436 bytes: not modelled" in conn.warnings
    assert not [w for w in conn.warnings if "protocol = esp" in w or "next hop" in w]
    odd = TEXT.read_text().replace("Mode                     : tunnel", "Mode : transport", 1)
    assert "tunnel 1: #2 mode = transport: not modelled" in parse_aws(odd, "x.txt").warnings


def test_bad_generic_text_names_the_section(tmp_path):
    bad = tmp_path / "vpn.txt"
    bad.write_text(
        TEXT.read_text().replace("Pre-Shared Key           : staticSampleKey.two_2026", "")
    )
    result = run("aws", str(bad), "-o", str(tmp_path / "lab.yaml"))
    assert result.exit_code == 2
    assert "IPSec Tunnel #2/#1 Internet Key Exchange Configuration/Pre-Shared Key: missing" in (
        result.output
    )
    assert not (tmp_path / "lab.yaml").exists()


def test_a_file_that_is_neither_format_is_refused(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello\n")
    result = run("aws", str(bad))
    assert (
        result.exit_code == 2 and "neither AWS's CustomerGatewayConfiguration XML" in result.output
    )


# the topology -----------------------------------------------------------------------------
def test_import_aws_writes_a_lab_the_aws_profile_runs(tmp_path):
    out = tmp_path / "lab.yaml"
    result = run("aws", str(XML), "--ike", "2", "-o", str(out))
    assert result.exit_code == 0, result.output
    env = tmp_path / "lab.env"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    text = out.read_text()
    assert "198.51.100.20 -> 203.0.113.21  customer gateway cgw" in text
    assert "203.0.113.202 -> 203.0.113.12  aws tunnel 2 endpoint vgw2" in text
    data = yaml.safe_load(text)
    assert data["sites"]["provider"]["provider"] == "aws" and data["routing"] == "bgp"
    assert data["tunnels"]["tunnel1"]["psk"] == {"env": "VPNLAB_TUNNEL1_PSK"}
    assert data["tunnels"]["tunnel2"]["inside"] == "169.254.45.4/30"
    # Nothing but the env file holds a key; it reaches the lab through env_file.
    assert files_holding(tmp_path, XML_KEYS) == [env]
    assert not any(k in result.output for k in XML_KEYS)
    lab = load_lab(out)
    t1 = lab.tunnels["tunnel1"]
    assert t1.customer.psk.get_secret_value() == XML_KEYS[0]
    assert (t1.customer.ike_proposals, t1.customer.dpd.delay, t1.customer.dpd.timeout) == (
        ["aes128-sha1-modp1024"],
        10,
        30,
    )
    assert (t1.provider.asn, t1.customer.asn, t1.hold) == (64512, 65010, 30)
    # AWS's endpoint behaviour, from the profile, in what the provider's charon loads.
    vgw1 = swanctl_conf(lab, "vgw1")
    for line in (
        "rekey_time = 28530s",
        "over_time = 270s",
        "rand_time = 270s",
        "dpd_delay = 10s",
        "rekey_time = 3330s",
        "life_time = 3600s",
        "dpd_action = clear",
        "start_action = none",
    ):
        assert line in vgw1, line
    assert "start_action = start" in swanctl_conf(lab, "cgw")


def test_reveal_secrets_puts_keys_in_a_private_topology(tmp_path):
    out = tmp_path / "lab.yaml"
    result = run("aws", str(TEXT), "-o", str(out), "--reveal-secrets")
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "lab.env").exists()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert all(k in out.read_text() for k in TEXT_KEYS)
    assert not any(k in result.output for k in TEXT_KEYS)
    assert load_lab(out).tunnels["tunnel2"].provider.psk.get_secret_value() == TEXT_KEYS[1]


def test_customer_subnet_and_vpc_cidr_options(tmp_path):
    out = tmp_path / "lab.yaml"
    args = ("--customer-subnet", "10.9.0.0/24", "--vpc-cidr", "10.44.0.0/16")
    result = run("aws", str(TEXT), "-o", str(out), *args)
    assert result.exit_code == 0, result.output
    lab = load_lab(out)
    assert lab.nodes["vpc-host"].interfaces[0].address.ip.exploded == "10.44.0.100"
    assert [str(n) for n in lab.tunnels["tunnel1"].customer.ts] == ["10.9.0.0/24"]
    bad = run("aws", str(TEXT), "-o", str(out), "--vpc-cidr", "10.44.0.1/16")
    assert bad.exit_code == 2 and "--vpc-cidr" in bad.output


# the customer's own files -------------------------------------------------------------------
def test_swanctl_against_the_aws_file(tmp_path):
    out = tmp_path / "lab.yaml"
    result = run("swanctl", str(SWANCTL), "--aws", str(TEXT), "-o", str(out))
    assert result.exit_code == 0, result.output
    lab = load_lab(out)
    t1, t2 = lab.tunnels["tunnel1"], lab.tunnels["tunnel2"]
    # paired by the customer's remote_addrs, keys equal on both ends (one env variable)
    assert t2.customer.psk.get_secret_value() == t2.provider.psk.get_secret_value() == TEXT_KEYS[1]
    assert [str(n) for n in t1.customer.ts] == ["10.20.0.0/24"]
    assert [str(n) for n in t1.provider.ts] == ["10.100.0.0/16"]
    assert (t1.customer.close_action, t1.customer.dpd.action) == ("start", "restart")
    assert files_holding(tmp_path, TEXT_KEYS) == [tmp_path / "lab.env"]


def test_swanctl_mismatch_keeps_the_customer_proposal(tmp_path):
    out = tmp_path / "lab.yaml"
    assert run("swanctl", str(MISMATCH), "--aws", str(TEXT), "-o", str(out)).exit_code == 0
    lab = load_lab(out)
    t1 = lab.tunnels["tunnel1"]
    assert t1.customer.ike_proposals == ["aes256-sha256-modp1536"]
    assert all("modp1536" not in p for p in t1.provider.ike_proposals)


def test_swanctl_warns_what_it_cannot_express():
    text = SWANCTL.read_text().replace("version = 2", "version = 2\n        fragmentation = yes", 1)
    text = text.replace(
        "dpd_action = restart", "dpd_action = restart\n                hostaccess = yes", 1
    )
    tunnels, warnings = from_swanctl(text, "s.conf")
    assert "connections.aws-tunnel-1.fragmentation: not modelled (ignored)" in warnings
    assert any("children.aws-tunnel-1.hostaccess: not modelled" in w for w in warnings)
    assert tunnels[0].psk == TEXT_KEYS[0]


def test_swanctl_unknown_algorithm_names_file_and_field(tmp_path):
    bad = tmp_path / "swanctl.conf"
    bad.write_text(
        SWANCTL.read_text().replace(
            "proposals = aes256-sha256-modp2048", "proposals = aes256-sha256-modp999", 1
        )
    )
    result = run("swanctl", str(bad), "-o", str(tmp_path / "o" / "lab.yaml"))
    assert result.exit_code == 2
    assert (
        f"{bad}: connections.aws-tunnel-1.proposals: unknown algorithm 'modp999'" in result.output
    )
    assert not (tmp_path / "o").exists()


def test_swanctl_without_aws_uses_the_profile_and_the_customer_keys(tmp_path):
    out = tmp_path / "lab.yaml"
    assert run("swanctl", str(SWANCTL), "-o", str(out)).exit_code == 0
    lab = load_lab(out)
    assert lab.profile == "aws" and lab.tunnels["tunnel1"].routing == "static"
    assert lab.tunnels["tunnel1"].provider.psk.get_secret_value() == TEXT_KEYS[0]


def test_ipsec_conf_with_default_also_and_secrets():
    keys = parse_secrets(IPSEC_SECRETS.read_text(), "ipsec.secrets")
    tunnels, warnings = from_ipsec_conf(IPSEC_CONF.read_text(), "ipsec.conf", keys)
    assert [t.name for t in tunnels] == ["aws-1", "aws-2"]
    t = tunnels[1]
    assert (t.ike, t.ike_proposals, t.esp_proposals) == (
        2,
        ["aes128-sha256-modp2048"],
        ["aes128-sha256-modp2048"],
    )
    assert (t.ike_lifetime, t.child_lifetime, t.rekey_margin, t.rekey_fuzz) == (
        28800,
        3600,
        240,
        100,
    )
    assert t.dpd == {"delay": 10, "timeout": 30, "action": "restart"}
    assert (t.start_action, t.psk, str(t.peer)) == ("start", CONF_KEYS[1], "203.0.113.222")
    assert [str(n) for n in t.local_subnets] == ["10.30.0.0/24"]
    assert "config setup: charondebug not modelled" in warnings


def test_ipsec_conf_without_strict_proposals_adds_strongswan_defaults():
    text = (
        "conn a\n  right=203.0.113.5\n  ike=aes256-sha256-modp2048\n"
        "  auto=route\n  dpdaction=hold\n"
    )
    (t,), warnings = from_ipsec_conf(text, "ipsec.conf", None)
    assert t.ike_proposals == ["aes256-sha256-modp2048", "default"]
    assert (t.start_action, t.dpd["action"], t.psk) == ("trap", "trap", None)
    assert any("no ipsec.secrets given" in w for w in warnings)


def test_ipsec_conf_also_loop_is_refused(tmp_path):
    bad = tmp_path / "ipsec.conf"
    bad.write_text("conn a\n  also=b\n  auto=start\nconn b\n  also=a\n")
    result = run("ipsec-conf", str(bad), "-o", str(tmp_path / "o" / "lab.yaml"))
    assert result.exit_code == 2
    assert f"{bad}: conn b.also: also= loop: a -> b -> a" in result.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("conn a\n  esp=aes128-sha1-foo!\n  auto=start\n", "conn a.esp: unknown algorithm 'foo'"),
        ("conn a\n  keyexchange=ikev3\n  auto=start\n", "conn a.keyexchange: 'ikev3'"),
        ("conn a\n  also=nowhere\n  auto=start\n", "conn a.also: no conn 'nowhere'"),
        ("conn a\n  dpddelay=soon\n  dpdaction=clear\n  auto=start\n", "conn a.dpddelay"),
        ("  left=1.2.3.4\n", "line 1: a setting outside any conn section"),
    ],
)
def test_ipsec_conf_errors_name_the_field(tmp_path, text, expected):
    bad = tmp_path / "ipsec.conf"
    bad.write_text(text)
    result = run("ipsec-conf", str(bad), "-o", str(tmp_path / "o" / "lab.yaml"))
    assert result.exit_code == 2, result.output
    assert f"{bad}: {expected}" in result.output
    assert not (tmp_path / "o").exists()


def test_ipsec_conf_cli_keeps_keys_out_of_output(tmp_path):
    out = tmp_path / "lab.yaml"
    result = run("ipsec-conf", str(IPSEC_CONF), "--secrets", str(IPSEC_SECRETS), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "auto=ignore" in result.output  # warnings are shown
    assert files_holding(tmp_path, CONF_KEYS) == [tmp_path / "lab.env"]
    assert not any(k in result.output for k in CONF_KEYS)
    lab = load_lab(out)
    assert lab.tunnels["tunnel1"].customer.rekey_margin == 240
    assert "rekey_time = 3360s" in swanctl_conf(lab, "cgw")


# the profile and the topology additions ------------------------------------------------------
def test_aws_profile_carries_the_endpoint_behaviour():
    p = load_profile("aws")
    assert p.endpoint is not None
    assert (p.endpoint.rekey_margin, p.endpoint.rekey_fuzz, p.endpoint.start_action) == (
        270,
        100,
        "none",
    )
    assert (p.endpoint.dpd.delay, p.endpoint.dpd.timeout, p.endpoint.dpd.action) == (
        10,
        40,
        "clear",
    )
    assert p.inside.refuses(__import__("ipaddress").IPv4Network("169.254.3.0/30"))


def test_profile_endpoint_is_validated(tmp_path, monkeypatch):
    (tmp_path / "fuzzy.yaml").write_text("name: fuzzy\nextends: aws\nendpoint: {rekey_fuzz: 150}\n")
    monkeypatch.setenv("VPNLAB_PROFILES", str(tmp_path))
    with pytest.raises(InputError, match=r"fuzzy.yaml: endpoint.rekey_fuzz"):
        load_profile("fuzzy")


def _imported(tmp_path: Path, edit) -> Path:
    out = tmp_path / "lab.yaml"
    assert run("aws", str(XML), "--ike", "2", "-o", str(out)).exit_code == 0
    data = yaml.safe_load(out.read_text())
    edit(data)
    out.write_text(yaml.safe_dump(data))
    return out


def test_a_tunnel_setting_wins_over_the_profile_endpoint(tmp_path):
    out = _imported(tmp_path, lambda d: d["tunnels"]["tunnel1"].update(dpd={"delay": 3}))
    lab = load_lab(out)
    assert lab.tunnels["tunnel1"].provider.dpd.delay == 3
    assert lab.tunnels["tunnel2"].provider.dpd.delay == 10


def test_reserved_inside_cidr_is_refused_by_the_profile(tmp_path):
    out = _imported(tmp_path, lambda d: d["tunnels"]["tunnel1"].update(inside="169.254.5.0/30"))
    with pytest.raises(TopologyError, match=r"tunnels.tunnel1.inside: aws profile: .*reserved"):
        load_lab(out)


def test_rekey_margin_must_be_shorter_than_the_lifetimes(tmp_path):
    out = _imported(
        tmp_path, lambda d: d["tunnels"]["tunnel1"]["customer"].update(rekey_margin=3600)
    )
    with pytest.raises(TopologyError, match=r"customer.rekey_margin: rekey margin 3600s"):
        load_lab(out)


def test_env_file_readable_by_others_is_refused(tmp_path):
    out = _imported(tmp_path, lambda d: None)
    (tmp_path / "lab.env").chmod(0o644)
    with pytest.raises(TopologyError, match=r"env_file: lab.env holds keys but others may read"):
        load_lab(out)


def test_env_file_without_the_variable_names_it(tmp_path):
    out = _imported(tmp_path, lambda d: None)
    env = tmp_path / "lab.env"
    env.write_text("VPNLAB_TUNNEL1_PSK=abcdefgh1\n")
    with pytest.raises(TopologyError, match=r"VPNLAB_TUNNEL2_PSK .* nor in env_file"):
        load_lab(out)
