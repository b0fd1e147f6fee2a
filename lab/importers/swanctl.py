"""A customer's swanctl.conf as the customer's side of a lab: each connection one tunnel,
with its proposals, selectors, DPD, lifetimes and start/close actions; what a lab cannot
express becomes a warning, never a silent drop.

Shared with ``ipsec_conf`` (the older ipsec.conf format): the checks of proposals,
durations, subnets and addresses, each naming the file and the field.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from lab.core.errors import InputError
from lab.importers.layout import CustomerTunnel
from lab.providers.swanctl_file import parse, words
from lab.topology.proposals import check_proposal
from lab.topology.schema import parse_duration
from lab.topology.yamlfile import read_text

# Settings each part of a swanctl.conf may hold that the lab expresses (the rest: warned).
CONN_KEYS = {
    "version", "local_addrs", "remote_addrs", "proposals", "rekey_time", "over_time",
    "rand_time", "dpd_delay", "dpd_timeout", "local", "remote", "children", "keyingtries",
    "mobike", "aggressive", "encap",
}  # fmt: skip
CHILD_KEYS = {
    "local_ts", "remote_ts", "esp_proposals", "rekey_time", "life_time", "rand_time",
    "start_action", "close_action", "dpd_action", "mode", "inactivity", "reqid",
}  # fmt: skip
# Handled by the lab itself (on the userspace data plane they are fixed), so only noted.
LAB_OWNED = {"keyingtries", "mobike", "encap", "aggressive", "reqid"}
Keys = list[tuple[set[str], str]]  # (the key's owners: ids or addresses, the key)


def seconds(value: str, where: str, file: str) -> int:
    try:
        return parse_duration(value)
    except ValueError:
        raise InputError(where, f"{value!r} is not a duration (e.g. 3600, 60m, 1h)", file) from None


def proposals(values: list[str], where: str, file: str, *, esp: bool) -> list[str]:
    for p in values:
        why = check_proposal(p, esp=esp)
        if why:
            raise InputError(where, f"{why} (strongSwan or vpnlab does not know it)", file)
    return values


def subnets(values: list[str], where: str, file: str, warnings: list[str]) -> list[IPv4Network]:
    out = []
    for v in values:
        v = v.split("[", 1)[0].strip()  # protocol/port restrictions: not modelled
        if v in ("dynamic", "%dynamic"):
            warnings.append(f"{where} = dynamic: the gateway's own address; the lab uses its LAN")
            continue
        try:
            out.append(IPv4Network(v, strict=False))
        except ValueError:
            raise InputError(where, f"{v!r} is not an IPv4 subnet", file) from None
    return out


def address(value: str | None) -> IPv4Address | None:
    """An IPv4 address from an address setting, or None (%any, names, ranges)."""
    for item in words(value or ""):
        try:
            return IPv4Address(item)
        except ValueError:
            continue
    return None


def name_id(value: str | None) -> str | None:
    """An IKE identity that is a name (kept); an address identity is mapped with the
    address, so it is dropped here."""
    if not value or value in ("%any", "%any4"):
        return None
    value = value.strip('"')
    if value.startswith("@"):
        value = value[1:]
    try:
        IPv4Address(value)
        return None
    except ValueError:
        return value


def load_swanctl(path: Path) -> tuple[list[CustomerTunnel], list[str]]:
    text = read_text(path, "swanctl.conf")
    return from_swanctl(text, str(path))


def from_swanctl(text: str, file: str) -> tuple[list[CustomerTunnel], list[str]]:
    conf = parse(text, file)
    warnings: list[str] = []
    conns = conf.get("connections")
    if not conns:
        raise InputError("connections", "no connection defined", file)
    keys = _secrets(conf.get("secrets", {}), file, warnings)
    for section in conf:
        if section not in ("connections", "secrets"):
            warnings.append(f"{section} {{...}}: not modelled")
    tunnels = [_connection(name, c, keys, file, warnings) for name, c in conns.items()]
    return tunnels, warnings


def _secrets(section: dict, file: str, warnings: list[str]) -> Keys:
    out = []
    for name, sec in section.items():
        if not name.startswith("ike"):
            warnings.append(f"secrets.{name}: only IKE pre-shared keys are used")
            continue
        if "secret" not in sec:
            raise InputError(f"secrets.{name}.secret", "missing", file)
        ids = {v for k, v in sec.items() if k == "id" or k.startswith("id")}
        out.append((ids, sec["secret"]))
    return out


def _connection(name: str, c: dict, keys: Keys, file: str, warnings: list[str]) -> CustomerTunnel:
    where = f"connections.{name}"
    if not isinstance(c, dict):
        raise InputError(where, "not a section", file)
    for key in c:
        if key not in CONN_KEYS:
            warnings.append(f"{where}.{key}: not modelled (ignored)")
        elif key in LAB_OWNED:
            warnings.append(f"{where}.{key} = {c[key]}: set by the lab (not taken from the file)")
    version = c.get("version", "0")
    if version not in ("0", "1", "2"):
        raise InputError(f"{where}.version", f"{version!r}: 0, 1 or 2", file)
    if version == "0":
        warnings.append(f"{where}.version = 0 (either): the lab uses IKEv2, as charon initiates")
    for side in ("local", "remote"):
        auth = _auth(c, side)
        if auth and auth != "psk":
            warnings.append(
                f"{where}.{side}.auth = {auth}: vpnlab labs authenticate with pre-shared keys"
            )
    children = c.get("children") or {}
    if not children:
        raise InputError(f"{where}.children", "no CHILD_SA defined", file)
    if len(children) > 1:
        warnings.append(
            f"{where}: {len(children)} CHILD_SAs; the lab derives its own per tunnel "
            f"(selectors of all of them joined, settings of {next(iter(children))})"
        )
    t = CustomerTunnel(name=name, ike=2 if version == "0" else int(version))
    t.ike_proposals = proposals(
        words(c.get("proposals", "default")), f"{where}.proposals", file, esp=False
    )
    if "rekey_time" in c:
        t.ike_lifetime = seconds(c["rekey_time"], f"{where}.rekey_time", file)
    for key in ("over_time", "rand_time"):
        if key in c:
            warnings.append(f"{where}.{key}: not modelled (charon's default margins apply)")
    if "dpd_delay" in c:
        t.dpd = {"delay": seconds(c["dpd_delay"], f"{where}.dpd_delay", file)}
    if "dpd_timeout" in c:
        t.dpd = {
            **(t.dpd or {}),
            "timeout": seconds(c["dpd_timeout"], f"{where}.dpd_timeout", file),
        }
    t.local, t.peer = address(c.get("local_addrs")), address(c.get("remote_addrs"))
    if t.peer is None:
        warnings.append(f"{where}.remote_addrs: no IPv4 address; paired by order")
    t.local_id = name_id((c.get("local") or {}).get("id"))
    t.remote_id = name_id((c.get("remote") or {}).get("id"))
    for cname, child in children.items():
        cw = f"{where}.children.{cname}"
        for key in child:
            if key not in CHILD_KEYS:
                warnings.append(f"{cw}.{key}: not modelled (ignored)")
        t.local_subnets += subnets(
            words(child.get("local_ts", "dynamic")), f"{cw}.local_ts", file, warnings
        )
        t.remote_subnets += subnets(
            words(child.get("remote_ts", "dynamic")), f"{cw}.remote_ts", file, warnings
        )
        if cname != next(iter(children)):
            continue
        t.esp_proposals = proposals(
            words(child.get("esp_proposals", "default")), f"{cw}.esp_proposals", file, esp=True
        )
        if "rekey_time" in child:
            t.child_lifetime = seconds(child["rekey_time"], f"{cw}.rekey_time", file)
        for key in ("life_time", "rand_time"):
            if key in child:
                warnings.append(f"{cw}.{key}: not modelled (charon's default margins apply)")
        if child.get("mode", "tunnel") != "tunnel":
            warnings.append(f"{cw}.mode = {child['mode']}: the lab runs tunnel mode")
        _actions(t, child, cw, file, warnings)
        if "inactivity" in child:
            t.inactivity = seconds(child["inactivity"], f"{cw}.inactivity", file)
    t.psk = _psk_for(t, c, keys)
    if t.psk is None:
        warnings.append(f"{where}: no matching secrets.ike* entry; a new key is generated")
    return t


def _auth(c: dict, side: str) -> str | None:
    sec = c.get(side)
    return sec.get("auth") if isinstance(sec, dict) else None


START = {"none": "none", "trap": "trap", "start": "start"}
DPD_ACTION = {"clear": "clear", "trap": "trap", "restart": "restart"}


def _actions(t: CustomerTunnel, child: dict, cw: str, file: str, warnings: list[str]) -> None:
    start = child.get("start_action")
    if start is not None:
        if start not in START:
            warnings.append(
                f"{cw}.start_action = {start}: the lab takes none, trap or start; start used"
            )
            start = "start"
        t.start_action = start
    close = child.get("close_action")
    if close is not None:
        if close not in ("none", "clear", "trap", "start"):
            raise InputError(f"{cw}.close_action", f"{close!r}: none, clear, trap or start", file)
        t.close_action = close
    action = child.get("dpd_action")
    if action is not None:
        if action not in DPD_ACTION:
            warnings.append(
                f"{cw}.dpd_action = {action}: the lab takes clear, trap or restart; clear used"
            )
            action = "clear"
        t.dpd = {**(t.dpd or {}), "action": action}


def _psk_for(t: CustomerTunnel, c: dict, keys: Keys) -> str | None:
    """The secret whose owners match this connection's identities or addresses (strongSwan
    picks the best match; an entry without ids matches any)."""
    mine = {v for v in ((c.get("local") or {}).get("id"), (c.get("remote") or {}).get("id")) if v}
    mine |= {str(a) for a in (t.local, t.peer) if a}
    best, score = None, -1
    for ids, secret in keys:
        s = len(ids & mine) if ids else 0
        if ((ids and s) or not ids) and s > score:
            best, score = secret, s
    return best
