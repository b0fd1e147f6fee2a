"""``pytest --vpnlab-report DIR``: the scenario run as one HTML report.

Each worker records every lab it takes down (``DIR/labs/<module>-<lab>-<runtime>``), and
tags each test's report with the lab it ran on and the first line of its docstring; the
controller (the only process, without xdist) renders ``DIR/report.html`` at the end.
The tags travel in ``user_properties``, the one place pytest-xdist carries to the controller.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from lab.session.handle import RunningLab

RECORD, DOC, SEEN = "vpnlab_record", "vpnlab_doc", "vpnlab_seen"


def record_folder(module: str, running: RunningLab) -> str:
    return f"{Path(module).stem}-{running.name}-{running.state.runtime}"


class ScenarioReport:
    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.checks: list = []
        self.saved: dict[str, str] = {}  # test node id -> the folder of a lab it took down

    def save(self, running: RunningLab) -> None:
        """Record a lab before it goes down, under the test file that brought it up."""
        from lab.report import html, record

        test = os.environ.get("PYTEST_CURRENT_TEST", "lab").rsplit(" ", 1)[0]
        folder = record_folder(test.split("::")[0], running)
        record.save(running, self.out_dir / html.LABS / folder)
        self.saved[test] = folder

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        outcome = yield
        report: pytest.TestReport = outcome.get_result()
        running = getattr(item, "funcargs", {}).get("lab")
        secrets: list[str] = []
        if running is not None:
            report.user_properties.append((RECORD, record_folder(str(item.path), running)))
            secrets = running.lab.psks()
        elif item.nodeid in self.saved:  # a lab the test brought up itself (running_lab)
            report.user_properties.append((RECORD, self.saved[item.nodeid]))
        # The test's docstring, else its module's runbook: what the test expects.
        module = getattr(item, "module", None)
        doc = (getattr(item, "obj", None).__doc__ or getattr(module, "__doc__", "") or "").strip()
        report.user_properties.append((DOC, doc.splitlines()[0] if doc else ""))
        if report.failed:
            from lab.core.redaction import redact

            # The assertion's last lines: what was seen, without the lab's keys.
            lines = report.longreprtext.strip().splitlines()
            report.user_properties.append((SEEN, redact("\n".join(lines[-12:]), secrets)))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        from lab.core.results import CheckResult

        if report.when != "call" and not (report.failed or report.skipped):
            return
        props = dict(report.user_properties)
        verdict = "pass" if report.passed else "skip" if report.skipped else "fail"
        if report.when != "call" and report.failed:
            verdict = "error"
        seen = props.get(SEEN, "")
        if report.skipped and isinstance(report.longrepr, tuple):
            seen = str(report.longrepr[2])
        self.checks.append(
            CheckResult(
                name=report.nodeid.split("@", 1)[0],  # without xdist's group
                verdict=verdict,
                expected=props.get(DOC, ""),
                seen=seen,
                record=props.get(RECORD, ""),
            )
        )

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if hasattr(session.config, "workerinput"):
            return  # the controller writes the report
        from lab.report import html

        args = " ".join(session.config.invocation_params.args)
        path = html.render(
            self.out_dir,
            title="vpnlab: scenario run",
            subtitle=f"pytest {args}".strip(),
            checks=self.checks,
        )
        tr = session.config.pluginmanager.get_plugin("terminalreporter")
        if tr is not None:
            tr.write_line(f"vpnlab report: {path}")
