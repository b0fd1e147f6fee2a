"""The HTML report as an engineer opens it: headless Chromium, from disk, no network.

Runbook: bring the Tray BGP lab up; fail tunnel 1 (its SA terminated) under a probe, then
restore it; capture the internet segment for 2 s; write the lab's report with ``vpnlab
report`` (the capture linked and copied); Chromium loads it with nothing
on its console, and the screenshot shows the diagram and the timeline plot (their colours);
no file of the report holds a key. A pytest run with ``--vpnlab-report`` records its lab.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

from PIL import Image

from lab.ops.failover import measure, restore
from lab.report import browser, graph, plot
from lab.testing.artefacts import files_holding

TOPOLOGY = "tray-bgp-ikev2.yaml"


def vpnlab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lab.cli", *args], capture_output=True, text=True, timeout=120
    )


def pixels(png: Path) -> Counter:
    with Image.open(png) as im:
        return Counter({colour: n for n, colour in im.convert("RGB").getcolors(1 << 24)})


def rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def test_lab_report_in_chromium(lab, tmp_path):
    m = measure(lab, "tunnel1", "terminate", after=1.0)
    assert m.result.longest is not None  # the plot has an outage to show
    restore(lab)
    pcap = tmp_path / "internet.pcap"
    proc = vpnlab("capture", "internet", "-o", str(pcap), "--for", "2s", "--lab", lab.name)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = vpnlab("report", "--lab", lab.name, str(tmp_path / "report"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    page = tmp_path / "report" / "report.html"
    shot = tmp_path / "shot.png"
    assert browser.screenshot(page, shot, 1400, 2600) == []  # nothing on the console
    seen = pixels(shot)
    assert seen[rgb(graph.UP)] > 200, "the diagram's green tunnels"
    assert seen[rgb(plot.SA_UP)] > 2000 and seen[rgb(plot.BGP_UP)] > 2000, "the plot's bars"
    assert seen[rgb(plot.OUTAGE)] > 20, "the probe's outage in the plot"
    assert files_holding(tmp_path / "report", lab.lab.psks()) == []
    recorded = tmp_path / "report" / "labs" / lab.name
    assert len(list((recorded / "logs").glob("*charon.log"))) == 3
    assert (recorded / "captures" / pcap.name).read_bytes() == pcap.read_bytes()
    assert f'href="labs/{lab.name}/captures/{pcap.name}"' in page.read_text()


def test_chromium_reports_a_broken_page(tmp_path):
    """The console check above can fail: a script error is seen."""
    page = tmp_path / "bad.html"
    page.write_text("<html><body><script>console.error('boom'); undefined_fn();</script>")
    said = browser.screenshot(page, tmp_path / "bad.png", 400, 300)
    assert any("boom" in s for s in said) and any("undefined_fn" in s for s in said)


def test_a_pytest_run_records_its_labs(pytester, lab_runtime):
    pytester.makepyfile(
        textwrap.dedent(
            '''
            """Thredd's split tunnels come up."""
            TOPOLOGY = "thredd-static.yaml"

            def test_up(lab):
                assert len(lab.lab.tunnels) == 2
            '''
        )
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--runtimes", lab_runtime, "--vpnlab-report", "out"
    )
    result.assert_outcomes(passed=1)
    out = pytester.path / "out"
    page = (out / "report.html").read_text()
    (folder,) = (out / "labs").iterdir()
    assert folder.name.endswith(f"-thredd-static-{lab_runtime}")
    assert "Thredd&#39;s split tunnels come up." in page and f'href="#lab-{folder.name}"' in page
