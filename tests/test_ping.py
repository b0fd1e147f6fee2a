"""The ping command lines and the reading of ping's output (no lab)."""

from __future__ import annotations

import subprocess

from lab.ops.ping import ping_summary, spaced_pings_argv

ONE = "--- 10.0.0.1 ping statistics ---\n1 packets transmitted, {} received, {}% packet loss\n"


def test_summaries_of_several_pings_are_summed():
    out = ONE.format(1, 0) + ONE.format(0, 100) + ONE.format(1, 0)
    assert ping_summary(out) == (3, 2)
    assert ping_summary("ping: connect: Network is unreachable\n") is None


def test_spaced_pings_each_wait_for_their_own_reply():
    argv = spaced_pings_argv("10.0.0.1", count=5, interval=0.05, wait=1)
    assert argv[:2] == ["sh", "-c"]
    script = argv[2]
    assert "seq 5" in script and "sleep 0.05" in script and script.endswith("wait")
    assert "ping -n -q -c 1 -W 1 10.0.0.1 &" in script


def test_spaced_pings_script_runs_every_probe(tmp_path):
    """The shell loop itself, with ping replaced by a stub that prints one summary."""
    stub = tmp_path / "ping"
    stub.write_text("#!/bin/sh\necho '1 packets transmitted, 1 received, 0% packet loss'\n")
    stub.chmod(0o755)
    argv = spaced_pings_argv("10.0.0.1", count=4, interval=0.01, wait=1)
    proc = subprocess.run(
        argv, capture_output=True, text=True, env={"PATH": f"{tmp_path}:/usr/bin:/bin"}
    )
    assert ping_summary(proc.stdout) == (4, 4)
