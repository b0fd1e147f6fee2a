"""The HTML report's pieces without a lab: the timeline's spans, the page (escaped, keys
redacted, self-contained), the checks a conformance run and a pytest run turn into."""

from __future__ import annotations

import re

import pytest

from lab.conformance.result import result
from lab.conformance.run import Report
from lab.core.results import CheckResult
from lab.observe.events import Event
from lab.providers.rules import Finding
from lab.report import conformance_run, html, plot
from lab.report.record import RECORD, LabRecord

PSK = "Sup3rSecretPsk.1"


def ev(kind: str, mono: float, **kw) -> Event:
    return Event(kind=kind, text=kw.pop("text", kind), mono=mono, wall=1_700_000_000 + mono, **kw)


def test_timeline_spans_sas_bgp_probe_outages_and_faults():
    events = [
        ev("recorder", 10.0),
        ev("ike-up", 9.5, node="cgw", tunnel="tunnel1"),  # already up when recording began
        ev("bgp", 11.0, node="cgw", tunnel="tunnel1", data={"state": "Up"}),
        ev("fault", 12.0, data={"id": 1, "fault": "block", "applied": True}),
        ev("outage", 12.5, text="app -> pc: replies stop"),
        ev("ike-down", 14.0, node="cgw", tunnel="tunnel1"),
        ev("recovered", 15.0, text="app -> pc: replies again after 2.5s"),
        ev("fault", 16.0, data={"id": 1, "fault": "block", "applied": False}),
        ev("ike-up", 17.0, node="cgw", tunnel="tunnel1"),
    ]
    tl = plot.timeline(events, until=20.0)
    rows = {r.label: r.spans for r in tl.rows}
    assert list(rows) == ["tunnel1 IKE @cgw", "tunnel1 BGP @cgw", "probe app -> pc"]
    assert rows["tunnel1 IKE @cgw"] == [(0.0, 4.5), (7.5, 10.5)]  # still up at the end
    assert rows["tunnel1 BGP @cgw"] == [(1.5, 10.5)]
    assert rows["probe app -> pc"] == [(3.0, 5.5)]
    assert tl.faults == [(2.5, 6.5, "block")]
    assert plot.svg(events).startswith("<svg")


def test_a_fault_never_cleared_lasts_to_the_end():
    tl = plot.timeline(
        [ev("fault", 1.0, data={"id": 3, "fault": "kill-charon", "applied": True})], 4.0
    )
    assert tl.faults == [(0.0, 3.0, "kill-charon")]


@pytest.fixture
def recorded(tmp_path):
    folder = tmp_path / html.LABS / "lab1"
    (folder / "logs").mkdir(parents=True)
    rec = LabRecord(
        lab="lab1",
        source="t.yaml",
        runtime="netns",
        taken=1_700_000_020.0,
        diagram_svg='<svg id="diagram"></svg>',
        status=None,
        status_error="LabError: gone",
        events=[ev("fault", 1.0, text="<script>alert(1)</script>"), ev("ike-up", 2.0, node="cgw")],
        logs=[],
        captures=[],
    )
    (folder / RECORD).write_text(rec.model_dump_json())
    return tmp_path


def test_the_page_is_escaped_redacted_and_self_contained(recorded):
    checks = [CheckResult(name="t", verdict="fail", seen=f"psk was {PSK}", record="lab1")]
    page = html.render(recorded, "title <b>", "sub", checks, secrets=[PSK]).read_text()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)" in page
    assert "title &lt;b&gt;" in page
    assert PSK not in page and "psk was &lt;redacted&gt;" in page
    assert '<svg id="diagram"></svg>' in page and page.count("<svg") == 2  # diagram, plot
    # Nothing to fetch: no external script, style, image or font.
    assert not re.search(r"""<(script|link|img)[^>]+(src|href)=["']?https?:""", page)
    assert "@import" not in page and "url(http" not in page
    assert 'href="#lab-lab1"' in page


def test_conformance_reports_become_checks():
    rep = Report("forms/acme.yaml", "cf-acme", results=[
        result("tunnel up", "tunnel1", "established", "down", "fail", "IKE proposal mismatch"),
    ], warnings=[Finding("warning", "subnets[0]", "/22 is wider than /24")])  # fmt: skip
    refused = Report("forms/bad.yaml", "", error="bad.yaml: psk: too short", refused=True)
    got = conformance_run.checks([rep, refused])
    assert [(c.name, c.verdict, c.record) for c in got] == [
        ("acme.yaml: form subnets[0]", "warn", ""),
        ("acme.yaml: tunnel up: tunnel1", "fail", "cf-acme"),
        ("bad.yaml: run", "error", ""),
    ]
    assert got[1].why == "IKE proposal mismatch"


def test_pytest_run_report(pytester):
    pytester.makepyfile(
        '''
        """Runbook: what these tests expect."""
        import pytest

        def test_ok():
            """it works"""

        def test_broken():
            assert 1 + 1 == 3

        def test_skipped():
            pytest.skip("no engine")
        '''
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--vpnlab-report", "out")
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    page = (pytester.path / "out" / html.REPORT).read_text()
    assert "it works" in page and "Runbook: what these tests expect." in page
    assert "assert (1 + 1) == 3" in page and "no engine" in page
    assert re.search(r"1 pass.*1 fail.*1 skip", page, re.S)
