"""The report of a running lab (``vpnlab report``): the lab recorded now, and a check per
tunnel from its typed status (both gateways established, BGP up where it is BGP-routed)."""

from __future__ import annotations

from pathlib import Path

from lab.core.results import CheckResult
from lab.observe.status import LabStatus
from lab.report import html, record
from lab.report.graph import tunnel_state
from lab.session.handle import RunningLab


def tunnel_checks(status: LabStatus | None) -> list[CheckResult]:
    if status is None:
        return []
    out = []
    for t in status.tunnels:
        want = "IKE and CHILD SAs established on both gateways"
        if t.routing == "bgp":
            want += ", BGP Established"
        sides = [
            f"{s.node}: {s.ike_state}"
            + "".join(f", {c.name} {c.state}" for c in s.children)
            + (f", BGP {s.bgp.state}" if s.bgp else "")
            for s in (t.provider, t.customer)
        ]
        why = "; ".join(f"{d.cause}: {d.message}" for d in status.diagnosis if d.tunnel == t.name)
        verdict = "pass" if tunnel_state(t) == "up" else "fail"
        out.append(
            CheckResult(
                name=f"tunnel up: {t.name}",
                verdict=verdict,
                expected=want,
                seen="; ".join(sides),
                why=why,
                record=status.lab,
            )
        )
    return out


def write(running: RunningLab, out_dir: Path) -> Path:
    """Record ``running`` into ``out_dir`` and write its report there."""
    rec = record.save(running, out_dir / html.LABS / running.name)
    return html.render(
        out_dir,
        title=f"vpnlab: lab {running.name}",
        subtitle=f"{rec.source}, {rec.runtime} runtime",
        checks=tunnel_checks(rec.status),
        secrets=running.lab.psks(),
    )
