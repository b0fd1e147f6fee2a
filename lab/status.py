"""A running lab's state, read from the daemons: what `vpnlab status` shows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lab.diagnose import diagnose
from lab.faults import active
from lab.topology.proposals import keywords

if TYPE_CHECKING:
    from lab.deploy import RunningLab

def _side(running: RunningLab, tunnel, ep) -> dict:
    sa = running.charon(ep.node).ike_sas().get(tunnel.name)
    out = {"node": ep.node, "address": str(ep.address), "ike_state": "DOWN",
           "ike_version": ep.ike, "ike_proposal": None, "children": []}
    if sa:
        out.update(ike_state=sa.get("state"), ike_version=int(sa.get("version", ep.ike)),
                   ike_proposal=keywords(sa), established_s=int(sa.get("established", 0)))
        for child in sa.get("child-sas", {}).values():
            out["children"].append({
                "name": child.get("name"), "state": child.get("state"),
                "esp_proposal": keywords(child), "encap": child.get("encap") == "yes",
                "local_ts": child.get("local-ts", []), "remote_ts": child.get("remote-ts", []),
                **{k.replace("-", "_"): int(child.get(k, 0))
                   for k in ("bytes-in", "bytes-out", "packets-in", "packets-out")},
            })
    if tunnel.routing == "bgp" and ep.inside:
        peer = running.frr(ep.node).bgp_peers().get(str(tunnel.side(ep.node)[1].inside.ip), {})
        out["bgp"] = {"state": peer.get("state", "Idle"),
                      "prefixes_received": peer.get("pfxRcd", 0),
                      "prefixes_sent": peer.get("pfxSnt", 0)}
    return out


def daemons_alive(running: RunningLab, node: str) -> dict[str, bool]:
    lab_node = running.lab.nodes[node]
    wanted = (["charon"] if lab_node.charon else []) + \
        (list(running.frr(node).daemons) if lab_node.frr else [])
    seen = set(running.runtime.processes(node).values())
    return {d: d in seen for d in wanted}


def collect(running: RunningLab) -> dict:
    lab = running.lab
    return {
        "lab": lab.name,
        "source": lab.source,
        "profile": lab.profile,
        "runtime": running.runtime.kind,
        "dataplane": {n: running.dataplane(n) for n, node in lab.nodes.items() if node.charon},
        "dataplane_asked": lab.dataplane,
        "phase": running.meta.get("phase"),
        "tunnels": [
            {"name": t.name, "routing": t.routing,
             "provider": _side(running, t, t.provider), "customer": _side(running, t, t.customer)}
            for t in lab.tunnels.values()
        ],
        "faults": [{"id": f.id, "kind": f.kind, "description": f.description,
                    "started": f.started, "age_s": round(f.age(), 1)}
                   for f in active(running)],
        "nodes": [
            {"name": n.name, "site": n.site, "role": n.role,
             "addresses": [str(i.address) for i in n.interfaces],
             "daemons": daemons_alive(running, n.name)}
            for n in lab.nodes.values()
        ],
        # Why a tunnel is down (or fragile), one line each, from the daemons' logs and vici.
        "diagnosis": [{"tunnel": d.tunnel, "cause": d.cause, "severity": d.severity,
                       "message": d.message, "evidence": list(d.evidence)}
                      for d in diagnose(running)],
    }
