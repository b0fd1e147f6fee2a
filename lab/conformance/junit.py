"""Conformance reports as JUnit XML, written and merged with junitparser: one test suite per
form, one test case per check."""

from __future__ import annotations

from pathlib import Path

from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

from lab.conformance.run import Report


def suite(report: Report) -> TestSuite:
    s = TestSuite(f"conformance {report.form}")
    for key in ("form", "lab", "profile", "runtime"):
        s.add_property(key, getattr(report, key))
    if report.error:
        case = TestCase("input" if report.refused else "lab", classname=report.form)
        problem = Error if not report.refused else Failure
        case.result = [
            problem(report.error.splitlines()[0], "refused" if report.refused else "error")
        ]
        case.system_out = report.error
        s.add_testcase(case)
    for r in report.results:
        case = TestCase(r.name, classname=report.form)
        case.system_out = f"expected: {r.expected}\nseen: {r.seen}" + (
            f"\nwhy: {r.why}" if r.why else ""
        )
        if r.verdict == "fail":
            case.result = [
                Failure(r.why or f"expected {r.expected}; seen {r.seen}", "check failed")
            ]
        elif r.verdict == "skip":
            case.result = [Skipped(r.why or "not applicable")]
        s.add_testcase(case)
    s.time = round(report.seconds, 3)
    return s


def write(reports: list[Report], path: Path) -> None:
    xml = JUnitXml("vpnlab conformance")
    for report in reports:
        xml.add_testsuite(suite(report))
    path.parent.mkdir(parents=True, exist_ok=True)
    xml.write(str(path), pretty=True)


def merge(inputs: list[Path], path: Path) -> JUnitXml:
    """One JUnit file from several (the shards of a CI matrix)."""
    xml = JUnitXml("vpnlab conformance")
    for f in inputs:
        for s in JUnitXml.fromfile(str(f)):
            xml.add_testsuite(s)
    path.parent.mkdir(parents=True, exist_ok=True)
    xml.write(str(path), pretty=True)
    return xml
