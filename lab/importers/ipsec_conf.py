"""A customer's ipsec.conf (strongSwan's older stroke format) as the customer's side of a
lab: ``conn %default``, ``also=`` (loops refused), ``ike=``/``esp=`` (``!`` = strict; without
it strongSwan appends its defaults, and so does the lab), ``keyexchange``, subnets, DPD,
lifetimes with rekeymargin/rekeyfuzz, ``auto=``, ``authby=secret`` with keys from an
ipsec.secrets. Settings a lab cannot express become warnings.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from lab.core.errors import InputError
from lab.importers.layout import CustomerTunnel
from lab.importers.swanctl import address, name_id, proposals, seconds, subnets
from lab.topology.yamlfile import read_text

USED = {
    "left", "right", "leftid", "rightid", "leftsubnet", "rightsubnet", "ike", "esp",
    "keyexchange", "dpddelay", "dpdtimeout", "dpdaction", "ikelifetime", "lifetime",
    "keylife", "auto", "authby", "type", "rekeymargin", "margintime", "rekeyfuzz",
    "closeaction", "inactivity", "also", "leftauth", "rightauth",
}  # fmt: skip
LAB_OWNED = {
    "keyingtries",
    "mobike",
    "forceencaps",
    "reqid",
    "aggressive",
    "installpolicy",
    "leftsourceip",
    "rightsourceip",
    "leftupdown",
    "rightupdown",
    "fragmentation",
}
AUTO = {"start": "start", "route": "trap", "add": "none"}
DPD_ACTION = {"clear": "clear", "hold": "trap", "restart": "restart"}


def parse(text: str, file: str) -> dict[str, dict[str, tuple[str, int]]]:
    """Section ("conn NAME", "config setup", "ca NAME") -> key -> (value, line)."""
    sections: dict[str, dict[str, tuple[str, int]]] = {}
    current: dict | None = None
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        if not raw[0].isspace():
            head = line.split()
            if head[0] == "version" or head[0] == "include":
                current = None
                continue
            if head[0] not in ("conn", "config", "ca") or len(head) != 2:
                raise InputError(f"line {n}", f"{line.strip()!r}: expected 'conn NAME'", file)
            key = f"{head[0]} {head[1]}"
            if key in sections:
                raise InputError(f"line {n}", f"{key} is defined twice", file)
            current = sections[key] = {}
            continue
        if current is None:
            raise InputError(f"line {n}", "a setting outside any conn section", file)
        m = re.fullmatch(r"\s*([\w-]+)\s*=\s*(.*?)\s*", line)
        if not m:
            raise InputError(f"line {n}", f"{line.strip()!r}: expected key=value", file)
        current[m[1]] = (m[2].strip('"'), n)
    return sections


def _expanded(name: str, sections: dict, file: str, chain: tuple[str, ...] = ()) -> dict:
    # `chain` is the also= path so far: a name already on it is a loop.
    """A conn's settings with %default and its also= sections merged in (its own win)."""
    if name in chain:
        loop = " -> ".join((*chain, name))
        raise InputError(f"conn {chain[-1]}.also", f"also= loop: {loop}", file)
    own = sections.get(f"conn {name}")
    if own is None:
        raise InputError(
            f"conn {chain[-1]}.also" if chain else f"conn {name}", f"no conn {name!r}", file
        )
    merged: dict = {}
    if not chain and name != "%default":
        merged.update(sections.get("conn %default", {}))
    also = own.get("also")
    if also:
        for ref in also[0].split():
            merged.update(_expanded(ref, sections, file, (*chain, name)))
    merged.update({k: v for k, v in own.items() if k != "also"})
    return merged


def load_ipsec_conf(path: Path, secrets: Path | None) -> tuple[list[CustomerTunnel], list[str]]:
    text = read_text(path, "ipsec.conf")
    keys = parse_secrets(read_text(secrets, "ipsec.secrets"), str(secrets)) if secrets else None
    return from_ipsec_conf(text, str(path), keys)


def parse_secrets(text: str, file: str) -> list[tuple[set[str], str]]:
    """``[selectors] : PSK "key"`` lines: (owners, key); no owners matches any."""
    out = []
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip() if not re.search(r'"[^"]*#', raw) else raw.strip()
        if not line or line.startswith("include"):
            continue
        m = re.fullmatch(r"(.*?):\s*(PSK|RSA|ECDSA|XAUTH|EAP|PIN|P12)\s+(.*)", line)
        if not m:
            raise InputError(f"line {n}", "expected '[ids] : PSK \"key\"'", file)
        if m[2] != "PSK":
            continue
        key = m[3].strip()
        if len(key) >= 2 and key[0] == key[-1] and key[0] in "\"'":
            key = key[1:-1]
        elif key.startswith("0s") or key.startswith("0x"):
            raise InputError(f"line {n}", "encoded keys (0x/0s) are not supported", file)
        owners = {o.strip('"').lstrip("@") for o in m[1].split()} - {"%any", "%any4"}
        out.append((owners, key))
    return out


def from_ipsec_conf(
    text: str, file: str, keys: list[tuple[set[str], str]] | None
) -> tuple[list[CustomerTunnel], list[str]]:
    sections = parse(text, file)
    warnings: list[str] = []
    if "config setup" in sections:
        warnings += [f"config setup: {k} not modelled" for k in sections["config setup"]]
    names = [s.split(" ", 1)[1] for s in sections if s.startswith("conn ") and s != "conn %default"]
    tunnels = []
    for name in names:
        conn = _expanded(name, sections, file)
        if conn.get("auto", ("ignore", 0))[0] == "ignore":
            # strongSwan does not load such a conn either.
            warnings.append(f"conn {name}: auto=ignore (or no auto=): not loaded, left out")
            continue
        tunnels.append(_tunnel(name, conn, file, keys, warnings))
    if not tunnels:
        raise InputError("conn", "no connection defined", file)
    return tunnels, warnings


Keys = list[tuple[set[str], str]]


def _tunnel(
    name: str, conn: dict, file: str, keys: Keys | None, warnings: list[str]
) -> CustomerTunnel:
    where = f"conn {name}"

    def get(key: str, default: str | None = None) -> str | None:
        return conn[key][0] if key in conn else default

    for key, (value, _) in conn.items():
        if key in LAB_OWNED:
            warnings.append(f"{where}.{key}={value}: set by the lab (not taken from the file)")
        elif key not in USED:
            warnings.append(f"{where}.{key}={value}: not modelled (ignored)")
    exchange = get("keyexchange", "ike")
    if exchange not in ("ike", "ikev1", "ikev2"):
        raise InputError(f"{where}.keyexchange", f"{exchange!r}: ike, ikev1 or ikev2", file)
    if exchange == "ike":
        warnings.append(
            f"{where}.keyexchange=ike (either): the lab uses IKEv2, as charon initiates"
        )
    t = CustomerTunnel(name=name, ike=1 if exchange == "ikev1" else 2)
    t.ike_proposals = _proposals(get("ike"), f"{where}.ike", file, esp=False)
    t.esp_proposals = _proposals(get("esp"), f"{where}.esp", file, esp=True)
    if (v := get("ikelifetime")) is not None:
        t.ike_lifetime = seconds(v, f"{where}.ikelifetime", file)
    life = get("lifetime", get("keylife"))
    if life is not None:
        t.child_lifetime = seconds(life, f"{where}.lifetime", file)
    margin = get("rekeymargin", get("margintime"))
    if margin is not None:
        t.rekey_margin = seconds(margin, f"{where}.rekeymargin", file)
        # ipsec.conf's lifetimes are hard ones with the margin before them; without a
        # margin the lab would rekey at the lifetime itself.
        t.ike_lifetime = t.ike_lifetime or 3 * 3600
        t.child_lifetime = t.child_lifetime or 3600
    if (v := get("rekeyfuzz")) is not None:
        m = re.fullmatch(r"(\d+)%?", v)
        if not m or int(m[1]) > 100:
            raise InputError(f"{where}.rekeyfuzz", f"{v!r}: a percentage 0-100", file)
        t.rekey_fuzz = int(m[1])
    _dpd(t, get, where, file, warnings)
    auto = get("auto", "ignore")
    if auto not in AUTO:
        raise InputError(f"{where}.auto", f"{auto!r}: add, route, start or ignore", file)
    t.start_action = AUTO[auto]
    if (v := get("closeaction")) is not None:
        t.close_action = {"none": "none", "clear": "clear", "hold": "trap", "restart": "start"}.get(
            v
        )
        if t.close_action is None:
            raise InputError(f"{where}.closeaction", f"{v!r}: none, clear, hold or restart", file)
    if (v := get("inactivity")) is not None:
        t.inactivity = seconds(v, f"{where}.inactivity", file)
    if get("type", "tunnel") != "tunnel":
        warnings.append(f"{where}.type={get('type')}: the lab runs tunnel mode")
    t.local, t.peer = address(get("left")), address(get("right"))
    if t.peer is None:
        warnings.append(f"{where}.right: no IPv4 address; paired by order")
    t.local_id, t.remote_id = name_id(get("leftid")), name_id(get("rightid"))
    t.local_subnets = subnets(_list(get("leftsubnet")), f"{where}.leftsubnet", file, warnings)
    t.remote_subnets = subnets(_list(get("rightsubnet")), f"{where}.rightsubnet", file, warnings)
    authby = get("authby", "pubkey")
    if authby not in ("secret", "psk"):
        warnings.append(f"{where}.authby={authby}: vpnlab labs authenticate with pre-shared keys")
    t.psk = _psk_for(conn, t, keys)
    if t.psk is None:
        why = "no ipsec.secrets given (--secrets)" if keys is None else "no matching PSK in it"
        warnings.append(f"{where}: {why}; a new key is generated")
    return t


def _list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _proposals(value: str | None, where: str, file: str, *, esp: bool) -> list[str]:
    if value is None:
        return ["default"]
    strict = value.endswith("!")
    found = proposals(_list(value.rstrip("!")), where, file, esp=esp)
    # Without '!' strongSwan proposes its default algorithms after the configured ones.
    return found if strict else [*found, "default"]


def _dpd(
    t: CustomerTunnel, get: Callable[..., str | None], where: str, file: str, warnings: list[str]
) -> None:
    action = get("dpdaction", "none")
    if action == "none":
        t.dpd = {"delay": 0}  # ipsec.conf: no dpdaction, no DPD
        return
    if action not in DPD_ACTION:
        raise InputError(f"{where}.dpdaction", f"{action!r}: none, clear, hold or restart", file)
    t.dpd = {
        "delay": seconds(get("dpddelay", "30s"), f"{where}.dpddelay", file),
        "timeout": seconds(get("dpdtimeout", "150s"), f"{where}.dpdtimeout", file),
        "action": DPD_ACTION[action],
    }


def _psk_for(conn: dict, t: CustomerTunnel, keys: Keys | None) -> str | None:
    if keys is None:
        return None
    mine = {conn[k][0].lstrip("@") for k in ("left", "right", "leftid", "rightid") if k in conn}
    best, score = None, -1
    for owners, key in keys:
        s = len(owners & mine)
        if ((owners and s) or not owners) and s > score:
            best, score = key, s
    return best
