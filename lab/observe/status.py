"""A running lab's state, read from the daemons: one typed model that ``vpnlab status``
(table and ``--json``) and the reports read.

The JSON shape is a contract for scripts: fields are added, never renamed or removed,
without a new ``schema_version``.
"""

from __future__ import annotations

from pydantic import BaseModel

from lab.core.parallel import by_key
from lab.observe.convergence import sa_problems
from lab.observe.diagnose import diagnose
from lab.session.handle import RunningLab
from lab.topology.model import Endpoint, Tunnel
from lab.topology.proposals import keywords

SCHEMA_VERSION = 1


class ChildStatus(BaseModel):
    name: str
    state: str
    esp_proposal: str
    encap: bool  # ESP in UDP (always on the userspace data plane)
    local_ts: list[str]
    remote_ts: list[str]
    bytes_in: int
    bytes_out: int
    packets_in: int
    packets_out: int


class BgpStatus(BaseModel):
    state: str
    prefixes_received: int
    prefixes_sent: int


class SideStatus(BaseModel):
    node: str
    address: str
    ike_state: str  # ESTABLISHED, CONNECTING, ... or DOWN (no IKE SA)
    ike_version: int
    ike_proposal: str | None = None
    established_s: int | None = None
    children: list[ChildStatus] = []
    bgp: BgpStatus | None = None  # BGP-routed tunnels only


class TunnelStatus(BaseModel):
    name: str
    routing: str
    mode: str = "policy"  # route | policy, as asked for (or the routing mode's default)
    provider: SideStatus
    customer: SideStatus


class FaultStatus(BaseModel):
    id: int
    kind: str
    description: str
    started: float  # epoch seconds
    age_s: float


class NodeStatus(BaseModel):
    name: str
    site: str
    role: str
    addresses: list[str]
    daemons: dict[str, bool]  # daemon -> running


class DiagnosisStatus(BaseModel):
    tunnel: str
    cause: str
    severity: str  # error | warning
    message: str
    evidence: list[str]


class LabStatus(BaseModel):
    schema_version: int = SCHEMA_VERSION
    lab: str
    source: str
    profile: str
    runtime: str
    dataplane: dict[str, str]  # gateway -> kernel | userspace
    dataplane_asked: str  # auto, or what the topology / --dataplane asked for
    phase: str
    tunnels: list[TunnelStatus]
    faults: list[FaultStatus]
    nodes: list[NodeStatus]
    # Why a tunnel is down (or fragile), one line each, from the daemons' logs and vici.
    diagnosis: list[DiagnosisStatus]


def _side(tunnel: Tunnel, ep: Endpoint, sas: dict[str, dict], peers: dict[str, dict]) -> SideStatus:
    sa = sas.get(tunnel.name)
    side = SideStatus(node=ep.node, address=str(ep.address), ike_state="DOWN", ike_version=ep.ike)
    if sa:
        side.ike_state = sa.get("state", "?")
        side.ike_version = int(sa.get("version", ep.ike))
        side.ike_proposal = keywords(sa)
        side.established_s = int(sa.get("established", 0))
        side.children = [
            ChildStatus(
                name=c.get("name", "?"),
                state=c.get("state", "?"),
                esp_proposal=keywords(c),
                encap=c.get("encap") == "yes",
                local_ts=c.get("local-ts", []),
                remote_ts=c.get("remote-ts", []),
                **{
                    k.replace("-", "_"): int(c.get(k, 0))
                    for k in ("bytes-in", "bytes-out", "packets-in", "packets-out")
                },
            )
            for c in sa.get("child-sas", {}).values()
        ]
    if tunnel.routing == "bgp" and ep.inside:
        peer = peers.get(str(tunnel.side(ep.node)[1].inside.ip), {})
        side.bgp = BgpStatus(
            state=peer.get("state", "Idle"),
            prefixes_received=peer.get("pfxRcd", 0),
            prefixes_sent=peer.get("pfxSnt", 0),
        )
    return side


def daemons_alive(running: RunningLab, node: str) -> dict[str, bool]:
    lab_node = running.lab.nodes[node]
    wanted = (["charon"] if lab_node.charon else []) + (
        list(running.frr(node).daemons) if lab_node.frr else []
    )
    seen = set(running.runtime.processes(node).values()) if wanted else set()
    return {d: d in seen for d in wanted}


def collect(running: RunningLab) -> LabStatus:
    lab = running.lab
    sas = by_key(lambda n: running.charon(n).ike_sas(), running.charons)
    bgp_nodes = [n for n, node in lab.nodes.items() if node.bgp and node.charon]
    peers = by_key(lambda n: running.frr(n).bgp_peers(), bgp_nodes)
    alive = by_key(lambda n: daemons_alive(running, n), lab.nodes)
    tunnels = [
        TunnelStatus(
            name=t.name,
            routing=t.routing,
            mode=t.mode,
            provider=_side(t, t.provider, sas[t.provider.node], peers.get(t.provider.node, {})),
            customer=_side(t, t.customer, sas[t.customer.node], peers.get(t.customer.node, {})),
        )
        for t in lab.tunnels.values()
    ]
    down = {p.tunnel for p in sa_problems(lab, sas) if p.tunnel}
    return LabStatus(
        lab=lab.name,
        source=lab.source,
        profile=lab.profile,
        runtime=running.runtime.kind,
        dataplane={n: running.dataplane(n) for n in running.charons},
        dataplane_asked=lab.dataplane,
        phase=running.state.phase,
        tunnels=tunnels,
        faults=[
            FaultStatus(
                id=f.id,
                kind=f.kind,
                description=f.description,
                started=f.started,
                age_s=round(f.age(), 1),
            )
            for f in running.state.faults
        ],
        nodes=[
            NodeStatus(
                name=n.name,
                site=n.site,
                role=n.role,
                addresses=[str(i.address) for i in n.interfaces],
                daemons=alive[n.name],
            )
            for n in lab.nodes.values()
        ],
        diagnosis=[
            DiagnosisStatus(
                tunnel=d.tunnel,
                cause=d.cause,
                severity=d.severity,
                message=d.message,
                evidence=list(d.evidence),
            )
            for d in diagnose(running, down)
        ],
    )
