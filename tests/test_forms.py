"""Setup forms against provider profiles, the plan made from them, and customer templates:
pure logic, no lab."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from lab.cli import main
from lab.core.errors import InputError
from lab.core.shipped import PROFILES, shipped
from lab.providers import swanctl_file
from lab.providers.bundle import render_bundle, shipped_templates
from lab.providers.form import parse_form
from lab.providers.plan import context, make_plan
from lab.providers.rules import check, errors
from lab.providers.setup import FormRejected, prepare
from lab.topology import load_lab
from lab.topology.profiles import load_profile, profile_names

EXAMPLES = shipped(PROFILES) / "examples"
TRAY = {
    "provider": "tray",
    "customer": "Acme",
    "org_id": "acme-1",
    "region": "eu-west-1",
    "gateway_ip": "198.51.100.21",
    "routing": "bgp",
    "asn": 65001,
    "subnets": ["172.16.1.0/24"],
}
THREDD = {
    "provider": "thredd",
    "customer": "Initech",
    "gateway_ip": "203.0.113.21",
    "routing": "static",
    "subnets": ["192.168.50.0/24"],
}


def findings(data: dict) -> list[str]:
    form = parse_form(yaml.safe_dump(data), "form.yaml")
    return [str(f) for f in check(form, load_profile(form.provider))]


def one_error(data: dict) -> str:
    found = [f for f in findings(data) if f.startswith("error")]
    assert len(found) == 1, found
    return found[0]


# profiles ---------------------------------------------------------------------------------
def test_shipped_profiles_load_and_extend_generic():
    assert {"generic", "tray", "thredd"} <= set(profile_names())
    thredd = load_profile("thredd")
    assert thredd.routing == ["static"] and thredd.tunnels.min == thredd.tunnels.max == 2
    assert thredd.subnets.max_prefix == 22 and thredd.subnets.refused == [20]
    assert thredd.split() and thredd.services_of(1) == ["web-services", "ehi"]
    # Inherited from generic: AWS's PSK rule, inside pool and lifetimes.
    assert thredd.psk.min_length == 8 and not thredd.psk.leading_zero
    assert thredd.lifetimes.ike.max == 28800 and thredd.lifetimes.child.max == 3600
    assert load_profile("tray").nat_egress is not None


def test_generic_profile_has_awss_limits():
    g = load_profile("generic")
    assert "modp1536" not in g.ike.dh_groups and "modp1536" in g.esp.dh_groups  # group 5
    assert g.asn.customer.reserved == [7224, 9059, 10124, 17493]
    assert any(str(r) == "169.254.169.252/30" for r in g.inside.reserved)
    for proposal in g.ike.proposals(esp=False):
        assert g.ike.outside(proposal) == []


def test_own_profile_directory_is_searched_first(tmp_path, monkeypatch):
    (tmp_path / "acmecloud.yaml").write_text(
        "name: acmecloud\nextends: tray\ndescription: ours\ntunnels: {min: 2, max: 2}\n"
    )
    monkeypatch.setenv("VPNLAB_PROFILES", str(tmp_path))
    p = load_profile("acmecloud")
    assert p.tunnels.min == 2 and p.nat_egress is not None
    assert "acmecloud" in profile_names()


def test_a_bad_profile_names_file_and_field(tmp_path, monkeypatch):
    (tmp_path / "broken.yaml").write_text(
        "name: broken\nextends: generic\nike: {encryption: [rot13], integrity: [sha1], "
        "dh_groups: [modp2048]}\n"
    )
    monkeypatch.setenv("VPNLAB_PROFILES", str(tmp_path))
    with pytest.raises(InputError) as exc:
        load_profile("broken")
    assert "broken.yaml" in str(exc.value) and "ike" in str(exc.value)
    assert "unknown algorithm 'rot13'" in str(exc.value)


def test_unknown_profile_lists_the_known_ones():
    with pytest.raises(
        InputError, match=r"unknown provider profile 'azure'; known: .*aws.*generic"
    ):
        load_profile("azure")


# form rules -------------------------------------------------------------------------------
def test_known_good_forms_pass():
    for f in EXAMPLES.glob("*.yaml"):
        form = parse_form(f.read_text(), str(f))
        assert errors(check(form, load_profile(form.provider))) == [], f


def test_thredd_refuses_a_slash_20():
    e = one_error({**THREDD, "subnets": ["172.16.0.0/20"]})
    assert e == "error: subnets.0: 172.16.0.0/20: a /20 is not permitted by thredd"


def test_thredd_subnet_size_limit_and_recommendation():
    assert "larger than thredd's maximum /22" in one_error({**THREDD, "subnets": ["10.8.0.0/21"]})
    found = findings({**THREDD, "subnets": ["10.8.0.0/23"]})
    assert found == ["warning: subnets.0: 10.8.0.0/23: thredd recommends a /24"]


def test_customer_subnet_overlapping_the_provider_vpc():
    e = one_error({**TRAY, "subnets": ["10.10.0.0/16"]})
    assert e == (
        "error: subnets.0: 10.10.0.0/16 overlaps the provider's tray-vpc service 10.10.0.0/24"
    )


def test_thredd_bgp_needs_the_agreed_exception():
    bgp = {**THREDD, "routing": "bgp", "asn": 65010}
    e = one_error(bgp)
    assert e.startswith("error: routing: the thredd profile routes VPNs statically")
    assert "set bgp_exception: true once it is agreed" in e
    assert [f for f in findings({**bgp, "bgp_exception": True}) if "error" in f] == []


def test_transit_gateway_attachments_are_static_only():
    e = one_error({**THREDD, "routing": "bgp", "asn": 65010, "bgp_exception": True,
                   "tgw_id": "tgw-0123456789abcdef0"})  # fmt: skip
    assert e == "error: tgw_id: Transit Gateway attachments are statically routed only"


RULE_CASES = [
    ({"org_id": None}, "org_id: required by the tray profile"),
    ({"colour": "blue"}, "colour: unknown field (the tray profile adds: org_id, region)"),
    ({"tunnels": 3}, "tunnels: the tray profile sets up 1 to 2 tunnels, not 3"),
    ({"asn": 9059}, "asn: 9059 is reserved by the provider's cloud"),
    ({"asn": 64512}, "asn: 64512 is the provider's own ASN"),
    ({"asn": None}, "asn: a BGP-routed VPN needs the customer gateway's ASN"),
    (
        {"inside": ["169.254.169.252/30", "169.254.20.0/30"]},
        "inside.0: 169.254.169.252/30 is reserved",
    ),
    ({"inside": ["169.254.20.0/29", "169.254.21.0/30"]}, "inside.0: 169.254.20.0/29 is not a /30"),
    ({"lifetimes": {"ike": 3600, "child": 3600}}, "lifetimes.child: phase 2 (3600s) must be"),
    ({"lifetimes": {"ike": 86400}}, "lifetimes.ike: 86400s is outside 900-28800s"),
    (
        {"proposals": {"ike": ["aes128-sha1-modp1536"]}},
        "proposals.ike.0: aes128-sha1-modp1536: DH group modp1536 not allowed by tray",
    ),
    (
        {"proposals": {"esp": ["3des-md5"]}},
        "proposals.esp.0: 3des-md5: encryption 3des, integrity md5 not allowed",
    ),
    ({"services": ["portal"]}, "services.0: 'portal' is no tray service"),
    (
        {"routing": "static", "asn": None, "subnets": []},
        "subnets: a statically routed VPN needs the customer's subnets",
    ),
]


@pytest.mark.parametrize(("change", "expected"), RULE_CASES)
def test_form_rules_name_the_field(change, expected):
    data = {k: v for k, v in {**TRAY, **change}.items() if v is not None}
    assert one_error(data).startswith(f"error: {expected}")


def test_tray_warns_about_a_single_tunnel():
    assert findings({**TRAY, "tunnels": 1}) == [
        "warning: tunnels: 1 tunnel(s): the tray profile recommends 2; a tunnel failure is "
        "then an outage"
    ]


@pytest.mark.parametrize(
    ("key", "rule"),
    [
        ("0penSesame1", "a key may not start with 0"),
        ("short", "a key is 8 to 64 characters long"),
        ("has spaces in it", "a key may hold only the characters [A-Za-z0-9._]"),
    ],
)
def test_psk_rules_never_quote_the_key(key, rule):
    good = "Another.good_key1"
    found = findings({**TRAY, "psk": [key, good]})
    assert found == [f"error: psk.0: {rule}"]
    assert all(key not in f and good not in f for f in found)


def test_psk_from_an_unset_environment_variable(monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    found = findings({**TRAY, "psk": [{"env": "NO_SUCH_KEY_VAR"}, "Another.good_key1"]})
    assert found == ["error: psk.0: environment variable NO_SUCH_KEY_VAR is not set"]


def test_malformed_form_names_file_and_field():
    with pytest.raises(InputError) as exc:
        parse_form("provider: tray\ncustomer: x\ngateway_ip: 1.2.3\nrouting: bgp\n", "f.yaml")
    assert str(exc.value) == "f.yaml: gateway_ip: '1.2.3' is not an IPv4 address"
    with pytest.raises(InputError, match=r"f.yaml: line 2, column 1: not valid YAML"):
        parse_form("provider: [tray\n", "f.yaml")
    with pytest.raises(InputError, match=r"f\.yaml: routing: required field is missing"):
        parse_form("provider: tray\ncustomer: x\ngateway_ip: 1.2.3.4\n", "f.yaml")


# plan and bundle --------------------------------------------------------------------------
def _plan(data: dict):
    form = parse_form(yaml.safe_dump(data), "form.yaml")
    return make_plan(form, load_profile(form.provider), "cf-test", "form.yaml")


def test_plan_puts_the_provider_on_the_customers_internet():
    plan = _plan({**TRAY, "gateway_ip": "192.0.2.77"})
    assert str(plan.lab.segments["internet"]) == "192.0.2.0/24"
    vgw1 = plan.lab.nodes["vgw1"]
    assert any(str(i.address.ip) == "192.0.2.11" for i in vgw1.interfaces)
    t1 = plan.lab.tunnels["tunnel1"]
    assert str(t1.customer.public_address) == "192.0.2.77"


def test_plan_refuses_a_gateway_ip_the_provider_side_uses():
    with pytest.raises(
        InputError, match=r"gateway_ip: 198\.51\.100\.11 is an address the lab gives"
    ):
        _plan({**TRAY, "gateway_ip": "198.51.100.11"})


def test_plan_inside_cidrs_skip_the_reserved_and_generated_keys_follow_the_rules():
    plan = _plan(TRAY)
    inside = [t.customer.inside.network for t in plan.lab.tunnels.values()]
    assert [str(n) for n in inside] == ["169.254.10.0/30", "169.254.10.4/30"]
    for key in plan.psks():
        assert 8 <= len(key) <= 64 and re.fullmatch(r"[A-Za-z0-9._]+", key)
        assert not key.startswith("0")


def test_plan_splits_thredd_services_between_the_tunnels():
    plan = _plan(THREDD)
    t1, t2 = plan.lab.tunnels.values()
    assert [str(n) for n in t1.provider.ts] == ["10.30.1.0/24", "10.30.2.0/24"]
    assert [str(n) for n in t2.provider.ts] == ["10.30.3.0/24"]
    assert plan.tunnel_services(t1) == ["web-services", "ehi"]


def test_shipped_templates_render_what_the_plan_says():
    plan = _plan(TRAY)
    files = render_bundle(shipped_templates("strongswan"), context(plan), "bgp")
    conf = swanctl_file.parse(files["swanctl.conf"])
    t1 = conf["connections"]["tunnel1"]
    assert t1["remote_addrs"] == "198.51.100.11" and t1["proposals"] == "aes256-sha256-modp2048"
    child = t1["children"]["tunnel1"]
    assert swanctl_file.words(child["remote_ts"]) == ["169.254.10.1/32", "10.10.0.0/24"]
    assert {s["secret"] for s in conf["secrets"].values()} == set(plan.psks())
    assert "router bgp 65001" in files["frr.conf"]
    assert "neighbor 169.254.10.5 remote-as 64512" in files["frr.conf"]
    static = render_bundle(shipped_templates("strongswan"), context(_plan(THREDD)), "static")
    assert set(static) == {"swanctl.conf"}


def test_a_misspelled_template_variable_names_template_line_and_variable(tmp_path):
    text = (shipped_templates("strongswan") / "swanctl.conf.j2").read_text()
    assert '"{{ t.psk }}"' in text
    (tmp_path / "swanctl.conf.j2").write_text(text.replace("{{ t.psk }}", "{{ t.pks }}"))
    line = 1 + text[: text.index("{{ t.psk }}")].count("\n")
    with pytest.raises(InputError) as exc:
        render_bundle(tmp_path, context(_plan(THREDD)), "static")
    assert str(exc.value) == (
        f"{tmp_path}/swanctl.conf.j2: line {line}: undefined variable tunnel.pks"
    )


def test_template_syntax_errors_and_missing_templates(tmp_path):
    (tmp_path / "swanctl.conf.j2").write_text("connections {\n{% for t in tunnels %}\n}\n")
    with pytest.raises(InputError, match=r"swanctl.conf.j2: line \d+: syntax: "):
        render_bundle(tmp_path, context(_plan(THREDD)), "static")
    with pytest.raises(InputError, match=r"frr\.conf\.j2: a BGP-routed VPN needs an FRR template"):
        render_bundle(tmp_path, context(_plan(TRAY)), "bgp")


def test_swanctl_file_reader():
    conf = swanctl_file.parse(
        'connections {\n  a { # c\n    proposals = x-y, z\n    children {\n      a {\n'
        '        esp_proposals = e\n      }\n    }\n  }\n}\nsecrets {\n  s { secret = "p#q" }\n}\n'
        .replace("s { secret", "s {\n secret").replace('" }', '"\n }')
    )  # fmt: skip
    assert swanctl_file.offered(conf) == {"a": {"ike": ["x-y", "z"], "esp": ["e"]}}
    assert conf["secrets"]["s"]["secret"] == "p#q"
    with pytest.raises(InputError, match="line 2: neither"):
        swanctl_file.parse("connections {\n what is this\n}\n")
    with pytest.raises(InputError, match="a section is not closed"):
        swanctl_file.parse("connections {\n")


# CLI -------------------------------------------------------------------------------------
def test_form_check_cli_lists_every_error_and_exits_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**THREDD, "subnets": ["172.16.0.0/20", "10.30.1.0/24"]}))
    result = CliRunner().invoke(main, ["form", "check", str(bad)])
    assert result.exit_code == 2
    assert "subnets.0: 172.16.0.0/20: a /20 is not permitted by thredd" in result.output
    assert "subnets.1: 10.30.1.0/24 overlaps the provider's web-services service" in result.output
    good = CliRunner().invoke(main, ["form", "check", str(EXAMPLES / "thredd.yaml")])
    assert good.exit_code == 0 and "ok (thredd profile, 0 warning(s))" in good.output


def test_form_new_writes_a_form_that_only_lacks_the_customers_answers(tmp_path):
    result = CliRunner().invoke(main, ["form", "new", "tray"])
    assert result.exit_code == 0
    data = yaml.safe_load(result.output)
    assert data["provider"] == "tray" and "org_id" in data
    data.update(customer="Acme", gateway_ip="198.51.100.21", org_id="a1", region="eu-west-1",
                subnets=["172.16.1.0/24"])  # fmt: skip
    assert findings(data) == []


def test_form_render_writes_bundle_and_lab_with_keys_kept_private(tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["form", "render", str(EXAMPLES / "tray-bgp.yaml"), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    for f in ("customer/swanctl.conf", "customer/frr.conf", "topology.yaml"):
        assert stat.S_IMODE((out / f).stat().st_mode) == 0o600
    lab = load_lab(out / "topology.yaml")
    assert set(lab.nodes["cgw"].supplied) == {"swanctl.conf", "frr.conf"}
    assert lab.profile == "tray"


def test_form_errors_stop_prepare_before_anything_runs(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**THREDD, "subnets": ["172.16.0.0/20"]}))
    with pytest.raises(FormRejected) as exc:
        prepare(bad)
    assert exc.value.exit_code == 2
    assert (
        str(exc.value)
        == f"{bad}: error: subnets.0: 172.16.0.0/20: a /20 is not permitted by thredd"
    )


def test_shipped_data_is_found_in_the_repository():
    assert (shipped(PROFILES) / "templates" / "strongswan" / "swanctl.conf.j2").is_file()
    assert Path(shipped(PROFILES)).name == "profiles"


def test_conformance_refuses_bad_input_with_exit_2_before_any_lab(tmp_path):
    """A misspelled template variable and a form breaking its profile's rules: exit 2,
    each naming file and field, and no lab was ever started."""
    from lab.session import state

    before = set(state.names())
    templates = tmp_path / "templates"
    templates.mkdir()
    text = (shipped_templates("strongswan") / "swanctl.conf.j2").read_text()
    (templates / "swanctl.conf.j2").write_text(text.replace("{{ t.psk }}", "{{ t.pks }}"))
    typo = CliRunner().invoke(
        main,
        [
            *("conformance", str(EXAMPLES / "thredd.yaml")),
            *("--templates", str(templates), "--runtime", "netns"),
        ],
    )
    assert typo.exit_code == 2, typo.output
    assert "swanctl.conf.j2: line" in typo.output and "undefined variable tunnel.pks" in typo.output
    bgp = tmp_path / "thredd-bgp.yaml"
    bgp.write_text(yaml.safe_dump({**THREDD, "routing": "bgp", "asn": 65010}))
    refused = CliRunner().invoke(main, ["conformance", str(bgp), "--runtime", "netns"])
    assert refused.exit_code == 2
    assert "routing: the thredd profile routes VPNs statically" in refused.output
    assert set(state.names()) == before


def test_thredds_bgp_exception_builds_a_bgp_lab_with_the_split_kept(tmp_path):
    """bgp_exception: true lets a Thredd form route with BGP; the lab's provider site says
    the exception was agreed, and each tunnel still carries only its own services, in its
    selectors and in what its gateway announces."""
    prepared = prepare(EXAMPLES / "thredd-bgp-exception.yaml", name="t-thredd-bgp")
    topo = prepared.plan.topology
    assert topo["sites"]["thredd"]["exceptions"] == ["bgp"]
    lab = load_lab(prepared.write(tmp_path / "lab"))
    assert {t.routing for t in lab.tunnels.values()} == {"bgp"}
    carried = {
        name: {str(n) for n in t.provider.ts if n.prefixlen < 32} for name, t in lab.tunnels.items()
    }
    assert carried == {
        "tunnel1": {"10.30.1.0/24", "10.30.2.0/24"},
        "tunnel2": {"10.30.3.0/24"},
    }
    announced = {n: {str(x) for x in lab.nodes[n].bgp.networks} for n in ("vgw1", "vgw2")}
    assert announced == {"vgw1": carried["tunnel1"], "vgw2": carried["tunnel2"]}
    assert lab.nodes["cgw"].bgp.asn == 4200000101


def test_without_the_flag_a_thredd_bgp_form_is_refused(tmp_path):
    form = yaml.safe_load((EXAMPLES / "thredd-bgp-exception.yaml").read_text())
    del form["bgp_exception"]
    path = tmp_path / "thredd-bgp.yaml"
    path.write_text(yaml.safe_dump(form))
    with pytest.raises(FormRejected) as info:
        prepare(path)
    assert "set bgp_exception: true once it is agreed" in str(info.value)
