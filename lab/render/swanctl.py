"""A node's strongSwan connections as one dict, loaded over vici and written as swanctl.conf.

Building the dict once keeps what charon runs and what the engineer reads identical.
"""

from __future__ import annotations

from lab.topology.model import Endpoint, Lab, Tunnel

REDACTED = "<redacted: use --reveal-secrets>"
# Below charon's automatic priorities for subnet selectors (~375000 for a /24 pair), so a
# ranked tunnel's policies also win over any unranked ones.
POLICY_PRIORITY = 1000


def connection(tunnel: Tunnel, node: str) -> dict:
    local, remote = tunnel.side(node)
    children = {}
    for child in tunnel.child_sas(node):
        name = child.name
        children[name] = {
            "mode": "tunnel",
            "local_ts": [str(n) for n in child.local_ts],
            "remote_ts": [str(n) for n in child.remote_ts],
            "esp_proposals": local.esp_proposals,
            **_lifetime(local.child_lifetime, local, child=True),
            "dpd_action": local.dpd.action,
            "start_action": local.start_action,
            "close_action": local.close_action,
        }
        if local.if_id is not None:
            # Policies and SAs bound to the tunnel's XFRM interface: only what is routed
            # into it is protected, so both tunnels can carry 0.0.0.0/0 side by side.
            children[name]["if_id_in"] = children[name]["if_id_out"] = str(local.if_id)
        if local.policy_rank is not None:
            # Fixed, in tunnel order (lower wins): see Endpoint.policy_rank.
            children[name]["priority"] = str(POLICY_PRIORITY + local.policy_rank)
        if local.inactivity:
            # charon closes the CHILD_SA after so long without a packet either way.
            children[name]["inactivity"] = f"{local.inactivity}s"
    conn = {
        "version": str(local.ike),
        "local_addrs": [str(local.address)],
        "remote_addrs": [str(remote.public_address)],  # a NAT's, if the peer is behind one
        "proposals": local.ike_proposals,
        **_lifetime(local.ike_lifetime, local, child=False),
        "dpd_delay": f"{local.dpd.delay}s",
        "mobike": "no",
        "local": {"auth": "psk", "id": local.id},
        "remote": {"auth": "psk", "id": remote.id},
        "children": children,
    }
    if "start" in (local.start_action, local.close_action) or local.dpd.action == "restart":
        conn["keyingtries"] = "0"  # an initiator keeps trying until the peer answers again
    if local.ike == 1:
        conn["aggressive"] = "no"
        conn["dpd_timeout"] = f"{local.dpd.timeout}s"
    return conn


def _lifetime(lifetime: int, ep: Endpoint, *, child: bool) -> dict[str, str]:
    """Without a margin the lifetime is the rekey time (charon adds 10% before the SA
    expires). With one (AWS's "rekey margin time", ipsec.conf's rekeymargin) the lifetime
    is the hard one: rekey ``margin`` before it, up to ``fuzz`` % of the margin earlier."""
    if not ep.rekey_margin:
        return {"rekey_time": f"{lifetime}s"}
    rand = ep.rekey_margin * ep.rekey_fuzz // 100
    hard = {"life_time": f"{lifetime}s"} if child else {"over_time": f"{ep.rekey_margin}s"}
    return {"rekey_time": f"{lifetime - ep.rekey_margin}s", **hard, "rand_time": f"{rand}s"}


def connections(lab: Lab, node: str) -> dict[str, dict]:
    """Every connection of ``node``, each CHILD_SA with a reqid of its own (1, 2, ...).

    With dynamic reqids strongSwan 5.9.8 can hand two tunnels one reqid when DPD restarts
    both at once (a restarted CHILD_SA asks for its old reqid; a released one can be
    reused by the other tunnel, strongSwan issue #1855). kernel-libipsec picks the
    outbound SA by reqid, so one tunnel's traffic then leaves in the other's SA and is
    dropped by the wrong peer, for good. A configured reqid is never reassigned.
    """
    conns = {t.name: connection(t, node) for t in lab.tunnels_of(node)}
    children = [child for conn in conns.values() for child in conn["children"].values()]
    for reqid, child in enumerate(children, start=1):
        child["reqid"] = str(reqid)
    return conns


def secrets(lab: Lab, node: str, *, reveal: bool) -> dict[str, dict]:
    out = {}
    for t in lab.tunnels_of(node):
        local, remote = t.side(node)
        out[f"ike-{t.name}"] = {
            "id-local": local.id,  # the key's owners: the IKE identities, not the addresses
            "id-remote": remote.id,
            "secret": local.psk.get_secret_value() if reveal else REDACTED,
        }
    return out


def _lines(section: dict, indent: int = 0) -> list[str]:
    pad = "    " * indent
    out = []
    for key, value in section.items():
        if isinstance(value, dict):
            out += [f"{pad}{key} {{", *_lines(value, indent + 1), f"{pad}}}"]
        elif isinstance(value, list):
            out.append(f"{pad}{key} = {', '.join(value)}")
        else:
            out.append(f"{pad}{key} = {value}")
    return out


def swanctl_conf(lab: Lab, node: str, *, reveal: bool = False) -> str:
    doc = {"connections": connections(lab, node), "secrets": secrets(lab, node, reveal=reveal)}
    return "# rendered by vpnlab from " + lab.source + "\n" + "\n".join(_lines(doc)) + "\n"
