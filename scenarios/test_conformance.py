"""Conformance runs: known-good forms and templates conform; seeded defects fail, each with
its own message.

Runbook: render the customer's bundle from a form and templates, bring up the provider side
from the profile and a customer gateway running exactly that bundle, run the checks, read
the verdict (and the JUnit file CI reads); the lab is gone afterwards unless --keep.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from junitparser import JUnitXml

from lab.conformance.run import Report, run
from lab.core.paths import lab_dir
from lab.core.shipped import PROFILES, shipped
from lab.providers.bundle import shipped_templates
from lab.runtime.netns import lab_namespaces
from lab.session import state
from lab.session.cleanup import destroy_lab
from lab.testing.artefacts import files_holding

EXAMPLES = shipped(PROFILES) / "examples"
TAG = f"t{os.getpid() % 10000}"  # this worker's labs


def name(runtime: str, what: str) -> str:
    return f"{TAG}{runtime[0]}-{what}"[:24]


def defective(tmp_path: Path, old: str, new: str) -> Path:
    """The shipped strongSwan templates with one seeded defect."""
    templates = tmp_path / "templates"
    shutil.copytree(shipped_templates("strongswan"), templates)
    conf = templates / "swanctl.conf.j2"
    text = conf.read_text()
    assert old in text, f"the shipped template changed: {old!r} is gone"
    conf.write_text(text.replace(old, new))
    return templates


def verdicts(report: Report) -> dict[str, str]:
    return {r.name: r.verdict for r in report.results}


def subject(r) -> str:
    """What a conformance result was about: its name after "<check>: "."""
    return r.name.split(": ", 1)[1]


def failed(report: Report, check: str) -> list:
    return [r for r in report.results if r.name.startswith(check) and r.verdict == "fail"]


def conform(form: str, templates: Path, runtime: str, what: str) -> Report:
    """One conformance run of a shipped example form; its lab is gone when it returns."""
    report = run(EXAMPLES / form, templates, runtime=runtime, name=name(runtime, what))
    print(report)
    assert_gone(report.lab)
    return report


def assert_gone(lab: str) -> None:
    assert lab not in state.names()
    assert not lab_namespaces(lab)


def test_known_good_forms_conform(lab_runtime, tmp_path):
    """Every shipped example form, side by side, through the CLI a CI job runs; its HTML
    report records every form's lab and holds no key."""
    junit, html = tmp_path / "conformance.xml", tmp_path / "html"
    prefix = f"{TAG}{lab_runtime[0]}"
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "lab.cli", "conformance", str(EXAMPLES)),
            *("--runtime", lab_runtime, "--jobs", "2", "--junit", str(junit), "--prefix", prefix),
            *("--report", str(html)),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    print(proc.stdout[-6000:], proc.stderr[-2000:])
    assert proc.returncode == 0
    suites = list(JUnitXml.fromfile(str(junit)))
    assert len(suites) == len(list(EXAMPLES.glob("*.yaml")))
    assert sum(s.failures + s.errors for s in suites) == 0
    assert all(s.tests >= 8 for s in suites)
    forms = len(list(EXAMPLES.glob("*.yaml")))
    assert f"{forms}/{forms} form(s) conform" in proc.stdout
    assert not [n for n in state.names() if n.startswith(prefix)]
    assert len(list((html / "labs").glob(f"{prefix}-*/record.json"))) == forms
    page = (html / "report.html").read_text()
    assert page.count('class="figure diagram"') == forms and "failover: tunnels" in page
    keys = yaml.safe_load((EXAMPLES / "generic-bgp-ikev1.yaml").read_text())["psk"]
    assert files_holding(html, keys) == []


def test_a_proposal_outside_the_profile_is_named(lab_runtime, tmp_path):
    """The template offers DH group 5 for IKE, which AWS (and so Tray) accepts only for
    phase 2: the template check names it, and the provider refuses the tunnels."""
    templates = defective(
        tmp_path,
        'proposals = {{ t.ike_proposals | join(", ") }}',
        "proposals = aes128-sha1-modp1536",
    )
    report = conform("tray-bgp.yaml", templates, lab_runtime, "prop")
    assert not report.passed
    (bad, _) = failed(report, "template proposals")
    assert (
        bad.why == "offers outside the tray profile: ike aes128-sha1-modp1536 (DH group modp1536)"
    )
    down = failed(report, "tunnel up")
    assert len(down) == 2
    assert all("IKE proposal mismatch" in r.why for r in down), [r.why for r in down]


def test_a_template_with_one_tunnel_where_the_profile_wants_two(lab_runtime, tmp_path):
    templates = defective(tmp_path, "{%- for t in tunnels %}", "{%- for t in tunnels[:1] %}")
    report = conform("thredd.yaml", templates, lab_runtime, "one")
    (bad,) = failed(report, "template: tunnels")
    assert bad.why == (
        "the template configures 1 tunnel(s) where the thredd profile and the form ask for 2"
    )
    assert [subject(r) for r in failed(report, "tunnel up")] == ["tunnel2"]
    assert verdicts(report)["service: portal (10.30.3.100)"] == "fail"
    assert verdicts(report)["service: ehi (10.30.2.100)"] == "pass"


def test_selectors_that_leave_out_a_listed_service(lab_runtime, tmp_path):
    """Thredd's tunnel 1 carries Web Services and EHI; a template whose remote selectors name
    only the first subnet loses EHI (IKEv2 narrows the tunnel to what the customer asks)."""
    templates = defective(
        tmp_path, 'remote_ts = {{ c.remote_ts | join(", ") }}', "remote_ts = {{ c.remote_ts[0] }}"
    )
    report = conform("thredd.yaml", templates, lab_runtime, "ts")
    (routes,) = failed(report, "routes")
    assert subject(routes) == "tunnel1"
    assert routes.why == "the negotiated selectors leave out provider side 10.30.2.0/24"
    (service,) = failed(report, "service")
    assert subject(service) == "ehi (10.30.2.100)"
    assert verdicts(report)["service: web-services (10.30.1.100)"] == "pass"


def test_a_24_hour_ike_lifetime_breaks_the_profile_in_the_file_and_on_the_wire(
    lab_runtime, tmp_path
):
    """The tunnels still come up and carry the services: only the lifetime rules fail, in
    the rendered file and in what the customer's charon runs with, each naming 28800 s."""
    templates = defective(tmp_path, "rekey_time = {{ t.ike_lifetime }}s", "rekey_time = 86400s")
    report = conform("thredd.yaml", templates, lab_runtime, "life")
    text = failed(report, "template lifetimes")
    assert [subject(r) for r in text] == ["tunnel1", "tunnel2"]
    assert all(
        r.why == "rekey_time = 86400s: the thredd profile's IKE lifetime is at most 28800 s"
        for r in text
    )
    live = failed(report, "lifetimes")
    assert [subject(r) for r in live] == ["tunnel1", "tunnel2"]
    assert all("above the thredd profile's 28800 s" in r.why for r in live), live
    assert {r.name for r in report.results if r.verdict == "fail"} == {r.name for r in text + live}


def test_dpd_off_in_the_template_fails_failover_and_says_why(lab_runtime, tmp_path):
    templates = defective(tmp_path, "        dpd_delay = {{ t.dpd_delay }}s\n", "")
    report = conform("tray-static.yaml", templates, lab_runtime, "dpd")
    fo, recovery = failed(report, "failover")
    active = subject(fo).split()[0]  # the tunnel the customer's traffic took
    assert subject(recovery) == f"{active} recovery"
    expected = (
        "the customer's swanctl.conf runs tunnel1, tunnel2 without DPD (no dpd_delay): its "
        f"side never notices that {active} is dead and keeps using its SA"
    )
    assert fo.why == recovery.why == expected
    assert verdicts(report)["tunnel up: tunnel1"] == "pass"


def test_keep_leaves_a_failed_lab_up_and_the_keys_out_of_the_report(tmp_path):
    templates = defective(
        tmp_path, 'remote_ts = {{ c.remote_ts | join(", ") }}', "remote_ts = {{ c.remote_ts[0] }}"
    )
    report = run(
        EXAMPLES / "thredd.yaml", templates, runtime="netns", keep=True, name=name("netns", "keep")
    )
    try:
        assert report.kept and not report.passed
        assert report.lab in state.names() and lab_namespaces(report.lab)
        bundle = (lab_dir(report.lab) / "cgw" / "swanctl.conf").read_text()
        keys = [line.split('"')[1] for line in bundle.splitlines() if "secret =" in line]
        assert len(keys) == 2
        assert not any(k in repr(report) for k in keys)
    finally:
        destroy_lab(report.lab)
    assert_gone(report.lab)
