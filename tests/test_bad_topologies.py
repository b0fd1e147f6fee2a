"""Malformed topologies: each fails with one TopologyError naming the file, field and rule.

Every case is the valid tray BGP topology with one thing broken, so the error must come
from that one thing. The message contract (what ``vpnlab validate`` prints):

    <file>: <field>: <rule>        on one line
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from topo_util import DEMO_PSK, REPO, drop, dump, mutated, put, variant, write

from lab.core.errors import TopologyError
from lab.topology import load_lab

UNSET_ENV = "VPNLAB_TEST_UNSET_PSK"


def edited(old: str, new: str) -> str:
    """The tray BGP topology as YAML text with one exact piece of text replaced."""
    text = mutated()
    assert text.count(old) == 1, f"{old!r} must occur once in the base topology"
    return text.replace(old, new)


def line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


TAB = edited("  lan: 172.16.1.0/24\n", "\tlan: 172.16.1.0/24\n")
UNCLOSED = edited("  lan: 172.16.1.0/24\n", "  lan: [172.16.1.0/24\n")
BAD_COLON = edited("name: tray-bgp-v2\n", "name: tray: bgp\n")
DUP_SEGMENT = edited("  lan: 172.16.1.0/24\n", "  lan: 172.16.1.0/24\n  vpc: 10.20.0.0/24\n")
DUP_ASN = edited("    asn: 65001\n", "    asn: 65001\n    asn: 65002\n")
DUP_PSK = edited(f"  psk: {DEMO_PSK}\n", f"  psk: {DEMO_PSK}\n  psk: {DEMO_PSK}-2\n")
THIRD_TUNNEL = {"provider": "vgw1", "customer": "cgw", "inside": "169.254.12.0/30"}
EXTRA_HOST = {"role": "host", "interfaces": {"lan": "172.16.1.101"}}

# (id, file content, exact field, key phrase of the rule)
CASES = [
    # --- the file is not a YAML mapping -------------------------------------------------
    (
        "yaml-tab-indent",
        TAB,
        f"line {line_of(TAB, chr(9))}, column 1",
        "found character '\\t' that cannot start any token",
    ),
    (
        "yaml-unclosed-bracket",
        UNCLOSED,
        f"line {line_of(UNCLOSED, 'sites:')}, column 6",
        "while parsing a flow sequence",
    ),
    (
        "yaml-colon-in-plain-scalar",
        BAD_COLON,
        "line 1, column 11",
        "mapping values are not allowed here",
    ),
    (
        "yaml-two-documents",
        "name: a\n---\nname: b\n",
        "line 2, column 1",
        "expected a single document",
    ),
    ("yaml-unhashable-key", "name: a\n? [x, y]\n: 1\n", "line 2, column 3", "found unhashable key"),
    (
        "top-level-list",
        "- name: tray-bgp-v2\n- routing: bgp\n",
        "(top level)",
        "a topology is a YAML mapping",
    ),
    ("top-level-scalar", "tray-bgp-v2\n", "(top level)", "a topology is a YAML mapping"),
    ("empty-file", "", "(top level)", "a topology is a YAML mapping"),
    ("not-utf8", b"name: tray\xff\n", "(file)", "not UTF-8 text"),
    ("duplicate-key-segment", DUP_SEGMENT, "segments.vpc", "duplicate key 'vpc'"),
    ("duplicate-key-nested", DUP_ASN, "sites.acme.asn", "duplicate key 'asn'"),
    ("duplicate-key-psk", DUP_PSK, "tunnel_defaults.psk", "duplicate key 'psk'"),
    # --- shape of the file ----------------------------------------------------------------
    (
        "unknown-field-typo",
        mutated(put("tunnels.tunnel1.keepalvie", 3)),
        "tunnels.tunnel1.keepalvie",
        "unknown field",
    ),
    ("unknown-field-top-level", mutated(put("tunnel", {})), "tunnel", "unknown field"),
    (
        "unknown-field-newline-in-key",
        mutated(put("tunnels.tunnel1.keep\nalive", 3)),
        "tunnels.tunnel1.keep alive",
        "unknown field",
    ),
    (
        "missing-node-role",
        mutated(drop("sites.acme.nodes.pc.role")),
        "sites.acme.nodes.pc.role",
        "required field is missing",
    ),
    ("missing-segments", mutated(drop("segments")), "segments", "required field is missing"),
    (
        "unknown-dataplane",
        mutated(put("dataplane", "kernal")),
        "dataplane",
        "'auto', 'userspace' or 'kernel'",
    ),
    (
        "unknown-role",
        mutated(put("sites.acme.nodes.pc.role", "server")),
        "sites.acme.nodes.pc.role",
        "'vpn-gateway', 'router', 'nat-gateway', 'host'",
    ),
    (
        "node-without-interfaces",
        mutated(put("sites.acme.nodes.pc.interfaces", {})),
        "sites.acme.nodes.pc.interfaces",
        "a node needs at least one interface",
    ),
    (
        "invalid-lab-name",
        mutated(put("name", "Tray_BGP")),
        "name",
        "lab names are lowercase letters, digits and '-'",
    ),
    (
        "invalid-segment-name",
        mutated(put("segments.LAN", "10.50.0.0/24")),
        "segments.LAN",
        "names are lowercase letters, digits and '-'",
    ),
    (
        "invalid-node-name",
        mutated(put("sites.acme.nodes.PC", EXTRA_HOST)),
        "sites.acme.nodes.PC",
        "node names are lowercase letters, digits and '-'",
    ),
    # --- addressing ----------------------------------------------------------------------
    (
        "segment-bad-prefix-length",
        mutated(put("segments.lan", "172.16.1.0/33")),
        "segments.lan",
        "is not an IPv4 network in CIDR form",
    ),
    (
        "segment-host-bits-set",
        mutated(put("segments.lan", "172.16.1.5/24")),
        "segments.lan",
        "has host bits set",
    ),
    (
        "segments-overlap",
        mutated(put("segments.lan", "10.10.0.128/25")),
        "segments.lan",
        "subnet 10.10.0.128/25 overlaps segment vpc (10.10.0.0/24)",
    ),
    (
        "address-not-ipv4",
        mutated(put("sites.acme.nodes.pc.interfaces.lan", "172.16.1.300")),
        "sites.acme.nodes.pc.interfaces.lan",
        "'172.16.1.300' is not an IPv4 address",
    ),
    (
        "address-outside-segment",
        mutated(put("sites.acme.nodes.pc.interfaces.lan", "172.16.2.100")),
        "sites.acme.nodes.pc.interfaces.lan",
        "address 172.16.2.100 is not a host address of segment lan",
    ),
    (
        "address-is-network-address",
        mutated(put("sites.acme.nodes.pc.interfaces.lan", "172.16.1.0")),
        "sites.acme.nodes.pc.interfaces.lan",
        "address 172.16.1.0 is not a host address of segment lan",
    ),
    (
        "address-is-broadcast",
        mutated(put("sites.acme.nodes.pc.interfaces.lan", "172.16.1.255")),
        "sites.acme.nodes.pc.interfaces.lan",
        "address 172.16.1.255 is not a host address of segment lan",
    ),
    (
        "duplicate-address",
        mutated(put("sites.acme.nodes.pc.interfaces.lan", "172.16.1.1")),
        "sites.acme.nodes.pc.interfaces.lan",
        "address 172.16.1.1 is already used by cgw",
    ),
    (
        "duplicate-node-across-sites",
        mutated(put("sites.acme.nodes.app", EXTRA_HOST)),
        "sites.acme.nodes.app",
        "duplicate node name (also in site tray)",
    ),
    (
        "interface-on-unknown-segment",
        mutated(put("sites.acme.nodes.pc.interfaces", {"lna": "172.16.1.100"})),
        "sites.acme.nodes.pc.interfaces.lna",
        "unknown segment 'lna'",
    ),
    # --- sites and profiles --------------------------------------------------------------
    (
        "no-provider-site",
        mutated(drop("sites.tray.provider")),
        "sites",
        "exactly one site must set 'provider: <profile>' (found 0)",
    ),
    (
        "two-provider-sites",
        mutated(put("sites.acme.provider", "tray")),
        "sites",
        "exactly one site must set 'provider: <profile>' (found 2)",
    ),
    (
        "no-customer-site",
        mutated(drop("sites.acme"), put("tunnels", {})),
        "sites",
        "at least one customer site",
    ),
    (
        "unknown-provider-profile",
        mutated(put("sites.tray.provider", "azure")),
        "sites.tray.provider",
        "unknown provider profile 'azure'",
    ),
    (
        "bgp-site-without-asn",
        mutated(drop("sites.acme.asn")),
        "sites.acme.asn",
        "uses BGP: the site needs an ASN",
    ),
    (
        "same-asn-both-sides",
        mutated(put("sites.acme.asn", 64512)),
        "sites.acme.asn",
        "64512 is also provider site tray's ASN: tunnel tunnel1's BGP session would be iBGP",
    ),
    (
        "keepalive-zero",
        mutated(put("tunnels.tunnel1.keepalive", 0)),
        "tunnels.tunnel1.keepalive",
        "keepalive 0 turns off BGP keepalives and the hold timer",
    ),
    (
        "customer-prefix-overlaps-provider",
        mutated(put("sites.acme.prefixes", ["10.10.0.0/16"])),
        "sites.acme.prefixes",
        "customer network 10.10.0.0/16 (site acme) overlaps the provider's",
    ),
    (
        "thredd-customer-subnet-20",
        mutated(
            put("sites.tray.provider", "thredd"),
            put("routing", "static"),
            put("tunnels.tunnel1.customer", {"node": "cgw", "subnets": ["172.16.0.0/20"]}),
        ),
        "tunnels.tunnel1.customer.subnets",
        "thredd profile: customer subnet 172.16.0.0/20 is larger than /22",
    ),
    (
        "thredd-bgp",
        mutated(put("sites.tray.provider", "thredd")),
        "tunnels.tunnel1.routing",
        "thredd profile: VPNs are statically routed "
        "(exceptions: [bgp] on the provider site, where agreed)",
    ),
    (
        "exception-the-profile-has-not",
        mutated(put("sites.tray.exceptions", ["bgp"])),
        "sites.tray.exceptions",
        "tray profile: there is no BGP exception to its routing rules",
    ),
    (
        "tray-three-tunnels",
        mutated(put("tunnels.tunnel3", THIRD_TUNNEL)),
        "tunnels.tunnel3",
        "tray profile: at most 2 tunnels per customer gateway",
    ),
    # --- tunnels -------------------------------------------------------------------------
    (
        "tunnel-unknown-customer-node",
        mutated(put("tunnels.tunnel1.customer", "cgw9")),
        "tunnels.tunnel1.customer",
        "unknown node 'cgw9'",
    ),
    (
        "tunnel-unknown-provider-node",
        mutated(put("tunnels.tunnel1.provider", "vgw9")),
        "tunnels.tunnel1.provider",
        "unknown node 'vgw9'",
    ),
    (
        "tunnel-ends-on-host",
        mutated(put("tunnels.tunnel1.customer", "pc")),
        "tunnels.tunnel1.customer",
        "pc has role host; tunnels end on a vpn-gateway",
    ),
    (
        "tunnel-provider-customer-swapped",
        mutated(put("tunnels.tunnel1.provider", "cgw"), put("tunnels.tunnel1.customer", "vgw1")),
        "tunnels.tunnel1.provider",
        "cgw is in customer site acme, not a provider site",
    ),
    (
        "tunnel-gateways-share-no-segment",
        mutated(put("sites.acme.nodes.cgw.interfaces", {"lan": "172.16.1.1"})),
        "tunnels.tunnel1.provider.address",
        "vgw1 and cgw share no segment",
    ),
    (
        "inside-not-slash-30",
        mutated(put("tunnels.tunnel1.inside", "169.254.10.0/29")),
        "tunnels.tunnel1.inside",
        "must be a /30",
    ),
    (
        "inside-outside-link-local",
        mutated(put("tunnels.tunnel1.inside", "10.99.0.0/30")),
        "tunnels.tunnel1.inside",
        "must lie in 169.254.0.0/16",
    ),
    (
        "inside-reused",
        mutated(put("tunnels.tunnel2.inside", "169.254.10.0/30")),
        "tunnels.tunnel2.inside",
        "169.254.10.0/30 is already used by tunnel tunnel1",
    ),
    (
        "bgp-without-inside",
        mutated(drop("tunnels.tunnel1.inside")),
        "tunnels.tunnel1.inside",
        "BGP routing needs an inside /30",
    ),
    (
        "ike-proposal-unknown-keyword",
        mutated(put("tunnels.tunnel1.ike_proposals", ["aes256-sha265-modp2048"])),
        "tunnels.tunnel1.ike_proposals",
        "unknown algorithm 'sha265'",
    ),
    (
        "ike-proposal-without-dh",
        mutated(put("tunnel_defaults.ike_proposals", ["aes256-sha256"])),
        "tunnel_defaults.ike_proposals",
        "names no DH group",
    ),
    (
        "esp-proposal-without-integrity",
        mutated(put("tunnels.tunnel1.esp_proposals", ["aes256-modp2048"])),
        "tunnels.tunnel1.esp_proposals",
        "names no integrity algorithm",
    ),
    ("ike-version-3", mutated(put("tunnel_defaults.ike", 3)), "tunnel_defaults.ike", "1 or 2"),
    (
        "ike-version-3-on-side",
        mutated(put("tunnels.tunnel1.customer", {"node": "cgw", "ike": 3})),
        "tunnels.tunnel1.customer.ike",
        "1 or 2",
    ),
    (
        "psk-missing",
        mutated(drop("tunnel_defaults.psk")),
        "tunnels.tunnel1.psk",
        "missing pre-shared key",
    ),
    (
        "psk-from-unset-env",
        mutated(put("tunnel_defaults.psk", {"env": UNSET_ENV})),
        "tunnels.tunnel1.psk",
        f"environment variable {UNSET_ENV} (the PSK) is not set",
    ),
    (
        "psk-empty",
        mutated(put("tunnel_defaults.psk", "")),
        "tunnels.tunnel1.psk",
        "the pre-shared key is empty",
    ),
    (
        "psk-is-a-number",
        mutated(put("tunnel_defaults.psk", 123456789)),
        "tunnel_defaults.psk",
        "a pre-shared key is a string",
    ),
    (
        "psk-key-written-as-env-name",
        mutated(put("tunnel_defaults.psk", {"env": DEMO_PSK})),
        "tunnel_defaults.psk",
        "takes the name of an environment variable",
    ),
    # --- timers --------------------------------------------------------------------------
    (
        "duration-unparseable",
        mutated(put("tunnels.tunnel1.keepalive", "5 minutes")),
        "tunnels.tunnel1.keepalive",
        "'5 minutes' is not a duration",
    ),
    (
        "duration-negative",
        mutated(put("tunnels.tunnel1.keepalive", -1)),
        "tunnels.tunnel1.keepalive",
        "a duration cannot be negative",
    ),
    (
        "dpd-delay-unparseable",
        mutated(put("tunnel_defaults.dpd.delay", "2x")),
        "tunnel_defaults.dpd.delay",
        "'2x' is not a duration",
    ),
    (
        "hold-below-3x-keepalive",
        mutated(put("tunnels.tunnel1.hold", 2)),
        "tunnels.tunnel1.hold",
        "hold (2s) must be at least 3 x keepalive (1s)",
    ),
    (
        "hold-below-3x-default-keepalive",
        mutated(drop("tunnels.tunnel1.keepalive"), put("tunnels.tunnel1.hold", "20s")),
        "tunnels.tunnel1.hold",
        "hold (20s) must be at least 3 x keepalive (10s)",
    ),
]


@pytest.fixture(autouse=True)
def _unset_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(UNSET_ENV, raising=False)


def load_error(path: Path) -> TopologyError:
    with pytest.raises(TopologyError) as info:
        load_lab(path)
    return info.value


def check_message(exc: TopologyError, path: Path, field: str, phrase: str) -> None:
    message = exc.message
    assert str(exc) == message
    assert "\n" not in message and "\r" not in message, f"not one line: {message!r}"
    assert message.startswith(f"{path}: "), message
    assert message.removeprefix(f"{path}: ").startswith(f"{field}: "), (
        f"expected field {field!r}: {message}"
    )
    assert exc.field.replace("\n", " ") == field
    assert phrase in exc.rule, f"expected rule {phrase!r}: {message}"
    assert DEMO_PSK not in message, f"PSK leaked into the error: {message}"


@pytest.mark.parametrize(
    ("content", "field", "phrase"), [pytest.param(c, f, p, id=i) for i, c, f, p in CASES]
)
def test_bad_topology(
    tmp_path: Path, request: pytest.FixtureRequest, content: str | bytes, field: str, phrase: str
) -> None:
    path = write(tmp_path, request.node.callspec.id, content)
    check_message(load_error(path), path, field, phrase)


def test_case_ids_are_unique() -> None:
    ids = [case[0] for case in CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 18


def test_base_topology_is_valid(tmp_path: Path) -> None:
    """The mutations above are only meaningful if the unmutated dump loads."""
    lab = load_lab(write(tmp_path, "base", variant()))
    assert set(lab.tunnels) == {"tunnel1", "tunnel2"}


def test_an_agreed_bgp_exception_is_accepted(tmp_path: Path) -> None:
    """Thredd routes statically, BGP by arrangement: the provider site says it was agreed."""
    topo = mutated(put("sites.tray.provider", "thredd"), put("sites.tray.exceptions", ["bgp"]))
    lab = load_lab(write(tmp_path, "agreed", topo))
    assert lab.exceptions == ("bgp",)
    assert {t.routing for t in lab.tunnels.values()} == {"bgp"}


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    check_message(load_error(path), path, "(file)", "cannot read topology")


def test_bad_name_override(tmp_path: Path) -> None:
    path = write(tmp_path, "ok", variant())
    with pytest.raises(TopologyError) as info:
        load_lab(path, name="Not_A_Name")
    check_message(info.value, path, "--name", "lab names are lowercase letters")


def test_psk_from_env_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The counterpart of psk-from-unset-env: once set, the key comes from the variable."""
    monkeypatch.setenv(UNSET_ENV, "from-the-environment")
    lab = load_lab(write(tmp_path, "env", variant(put("tunnel_defaults.psk", {"env": UNSET_ENV}))))
    assert lab.tunnels["tunnel1"].provider.psk.get_secret_value() == "from-the-environment"


# --- the CLI: `vpnlab validate FILE` --------------------------------------------------------

CLI_MISSING = importlib.util.find_spec("lab.cli") is None
CLI_LAB = f"t-validate-{os.getpid()}"
STATE_ROOT = Path(os.environ.get("VPNLAB_STATE", "/var/lib/vpnlab"))
CLI_UNCLOSED = dump(variant(put("name", CLI_LAB))).replace(
    "  lan: 172.16.1.0/24\n", "  lan: [172.16.1.0/24\n"
)

CLI_CASES = [
    pytest.param(
        CLI_UNCLOSED,
        f"line {line_of(CLI_UNCLOSED, 'sites:')}, column 6",
        "not valid YAML",
        id="malformed-yaml",
    ),
    pytest.param(
        dump(variant(put("name", CLI_LAB), put("tunnels.tunnel1.keepalvie", 3))),
        "tunnels.tunnel1.keepalvie",
        "unknown field",
        id="unknown-field",
    ),
    pytest.param(
        dump(variant(put("name", CLI_LAB), put("tunnels.tunnel2.inside", "169.254.10.0/30"))),
        "tunnels.tunnel2.inside",
        "is already used by tunnel tunnel1",
        id="inside-reused",
    ),
]


def _namespaces() -> set[str]:
    if shutil.which("ip"):
        out = subprocess.run(
            ["ip", "netns", "list"], capture_output=True, text=True, check=False
        ).stdout
        return {line.split()[0] for line in out.splitlines() if line.strip()}
    run_netns = Path("/run/netns")
    return {p.name for p in run_netns.iterdir()} if run_netns.is_dir() else set()


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lab.cli", "validate", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )


@pytest.mark.skipif(
    CLI_MISSING, reason="lab/cli.py does not exist yet (the lead is writing `vpnlab validate`)"
)
@pytest.mark.parametrize(("content", "field", "phrase"), CLI_CASES)
def test_cli_validate_rejects(tmp_path: Path, content: str, field: str, phrase: str) -> None:
    path = write(tmp_path, "bad", content)
    assert not (STATE_ROOT / CLI_LAB).exists()

    proc = _validate(path)

    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{proc.stderr}"
    assert lines[0].startswith(f"error: {path}: {field}: "), lines[0]
    assert phrase in lines[0]
    # Validation starts nothing and writes no lab state. Only this lab's namespaces are
    # checked: labs that other tests or engineers run alongside have namespaces of their own.
    ours = [ns for ns in _namespaces() if ns.startswith(f"vpnlab.{CLI_LAB}.")]
    assert not ours, f"validate created namespaces: {ours}"
    assert not (STATE_ROOT / CLI_LAB).exists()


@pytest.mark.skipif(
    CLI_MISSING, reason="lab/cli.py does not exist yet (the lead is writing `vpnlab validate`)"
)
def test_cli_validate_accepts(tmp_path: Path) -> None:
    path = write(tmp_path, "good", variant(put("name", CLI_LAB)))
    proc = _validate(path)
    assert proc.returncode == 0, proc.stderr
    assert CLI_LAB in proc.stdout
    assert not (STATE_ROOT / CLI_LAB).exists()


def test_a_large_lab_validates_on_one_short_line(tmp_path: Path) -> None:
    """`vpnlab validate` counts the tunnels of a large lab instead of listing each."""
    from click.testing import CliRunner

    from lab.cli import main

    data = variant()
    template = data["tunnels"].pop("tunnel1")
    data["tunnels"] = {}
    for i in range(100):
        data["segments"][f"lan{i}"] = f"172.20.{i}.0/24"
        data["sites"][f"c{i}"] = {
            "asn": 65100 + i,
            "nodes": {
                f"gw{i}": {
                    "role": "vpn-gateway",
                    "interfaces": {"internet": f"198.51.100.{100 + i}", f"lan{i}": f"172.20.{i}.1"},
                }
            },
        }
        data["tunnels"][f"t{i}"] = {
            **template,
            "customer": f"gw{i}",
            "inside": f"169.254.{20 + i}.0/30",
        }
    del data["sites"]["acme"], data["segments"]["lan"]
    path = write(tmp_path, "hundred", data)
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert "100 tunnels (100 bgp/IKEv2)" in result.output
