"""Conformance verdicts as JUnit, shards of a form directory, and keys kept out of
reports: pure logic, no lab."""

from __future__ import annotations

from pathlib import Path

import pytest
from junitparser import Failure, JUnitXml, Skipped

from lab.conformance import batch, junit
from lab.conformance.result import result
from lab.conformance.run import Report, _redact
from lab.core.errors import InputError


def report(form: str, *verdicts: str, error: str = "", refused: bool = False) -> Report:
    results = [
        result("service", f"s{i}", "5/5 replies", "5/5", v, "why not" if v != "pass" else "")
        for i, v in enumerate(verdicts)
    ]
    return Report(form, "cf-x", "tray", "netns", results, error=error, refused=refused)


def test_junit_has_one_case_per_check_and_says_why(tmp_path):
    path = tmp_path / "out" / "cf.xml"
    junit.write([report("a.yaml", "pass", "fail", "skip"), report("b.yaml", "pass")], path)
    suites = list(JUnitXml.fromfile(str(path)))
    assert [s.name for s in suites] == ["conformance a.yaml", "conformance b.yaml"]
    a = suites[0]
    assert (a.tests, a.failures, a.skipped) == (3, 1, 1)
    failed = next(c for c in a if c.result and isinstance(c.result[0], Failure))
    assert failed.name == "service: s1" and failed.result[0].message == "why not"
    assert "expected: 5/5 replies" in failed.system_out
    skipped = next(c for c in a if c.result and isinstance(c.result[0], Skipped))
    assert skipped.result[0].message == "why not"


def test_a_refused_form_is_one_failed_case(tmp_path):
    path = tmp_path / "cf.xml"
    junit.write([report("bad.yaml", error="bad.yaml: subnets.0: no", refused=True)], path)
    (suite,) = JUnitXml.fromfile(str(path))
    (case,) = list(suite)
    assert case.name == "input" and case.result[0].message == "bad.yaml: subnets.0: no"


def test_merge_combines_the_shards(tmp_path):
    junit.write([report("a.yaml", "pass")], tmp_path / "1.xml")
    junit.write([report("b.yaml", "fail"), report("c.yaml", "pass")], tmp_path / "2.xml")
    merged = junit.merge([tmp_path / "1.xml", tmp_path / "2.xml"], tmp_path / "all.xml")
    assert len(list(merged)) == 3
    again = JUnitXml.fromfile(str(tmp_path / "all.xml"))
    assert sum(s.failures for s in again) == 1 and sum(s.tests for s in again) == 2 + 1


def test_shards_cover_every_form_once():
    forms = [Path(f"f{i:02}.yaml") for i in range(11)]
    slices = [batch.shard(forms, i, 4) for i in range(1, 5)]
    assert sorted(f for s in slices for f in s) == forms
    assert {len(s) for s in slices} == {2, 3}
    assert batch.parse_shard("2/4") == (2, 4)
    for bad in ("0/4", "5/4", "x", "1/"):
        with pytest.raises(InputError, match="--shard"):
            batch.parse_shard(bad)


def test_lab_names_are_distinct_and_valid():
    forms = [Path("a/acme-payments-production-eu.yaml"), Path("b/acme-payments-production-eu.yaml")]
    names = batch.lab_names(forms, "ci1")
    assert len(set(names.values())) == 2
    assert all(len(n) <= 24 and n.startswith("ci1-") for n in names.values())


def test_forms_in_a_directory(tmp_path):
    with pytest.raises(InputError, match="holds no forms"):
        batch.forms_in(tmp_path)
    (tmp_path / "b.yaml").write_text("x: 1\n")
    (tmp_path / "a.yml").write_text("x: 1\n")
    assert [p.name for p in batch.forms_in(tmp_path)] == ["a.yml", "b.yaml"]
    with pytest.raises(InputError, match="no such form"):
        batch.forms_in(tmp_path / "nope.yaml")


def test_keys_are_redacted_from_everything_a_report_holds():
    r = Report("f.yaml", "cf-x", error="swanctl said s3cret.Key")
    r.results = [result("tunnel up", "t1", "s3cret.Key", "x s3cret.Key", "fail", "why s3cret.Key")]
    _redact(r, ["s3cret.Key"])
    assert "s3cret" not in repr(r)
