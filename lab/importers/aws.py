"""An AWS Site-to-Site VPN connection's configuration, as AWS hands it out, read into typed
tunnels: the ``CustomerGatewayConfiguration`` XML (as such, or inside the JSON of ``aws ec2
describe-vpn-connections``) and the "Generic" text download. Which one a file is, is
detected from its content.

AWS's words for algorithms (``aes-128-cbc``, ``hmac-sha1-96``, ``group2``, "Diffie-Hellman
Group 2") become strongSwan proposal keywords here, checked against the lab's table, so an
algorithm nobody knows is refused naming the file and the field, before anything is built.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

from pydantic import SecretStr

from lab.core.errors import InputError
from lab.topology.proposals import check_proposal
from lab.topology.yamlfile import read_text

ENCRYPTION = {
    "aes128cbc": "aes128",
    "aes256cbc": "aes256",
    "aes128": "aes128",
    "aes256": "aes256",
    "aes128gcm16": "aes128gcm16",
    "aes256gcm16": "aes256gcm16",
}
INTEGRITY = {
    "sha1": "sha1",
    "hmacsha196": "sha1",
    "sha2256": "sha256",
    "sha256": "sha256",
    "hmacsha2256128": "sha256",
    "sha2384": "sha384",
    "sha384": "sha384",
    "hmacsha2384192": "sha384",
    "sha2512": "sha512",
    "sha512": "sha512",
    "hmacsha2512256": "sha512",
}
# IKE DH group numbers (RFC 3526, 5114, 5903) -> strongSwan keywords.
DH_GROUPS = {
    1: "modp768",
    2: "modp1024",
    5: "modp1536",
    14: "modp2048",
    15: "modp3072",
    16: "modp4096",
    17: "modp6144",
    18: "modp8192",
    19: "ecp256",
    20: "ecp384",
    21: "ecp521",
    22: "modp1024s160",
    23: "modp2048s224",
    24: "modp2048s256",
}


@dataclass(frozen=True)
class AwsTunnel:
    number: int
    customer_outside: IPv4Address
    vgw_outside: IPv4Address
    psk: SecretStr
    ike: int
    ike_proposal: str
    esp_proposal: str
    ike_lifetime: int
    child_lifetime: int
    dpd_delay: int
    dpd_retries: int
    customer_inside: IPv4Interface | None = None
    vgw_inside: IPv4Interface | None = None
    customer_asn: int | None = None
    vgw_asn: int | None = None
    hold: int | None = None


@dataclass(frozen=True)
class AwsConnection:
    file: str
    format: str  # "xml" or "text"
    connection_id: str | None
    tunnels: list[AwsTunnel]
    warnings: list[str] = field(default_factory=list)

    @property
    def routing(self) -> str:
        return "bgp" if all(t.vgw_asn is not None for t in self.tunnels) else "static"


def load_aws(path: Path, ike: int | None = None) -> AwsConnection:
    """The connection in ``path`` (XML, describe-vpn-connections JSON or Generic text);
    ``ike`` overrides the IKE version where the file does not say it."""
    text = read_text(path, "AWS VPN configuration")
    return parse_aws(text, str(path), ike)


def parse_aws(text: str, file: str, ike: int | None = None) -> AwsConnection:
    stripped = text.lstrip()
    if stripped.startswith("{"):
        stripped = _from_json(stripped, file)
    if stripped.startswith("<"):
        conn = _parse_xml(stripped, file, ike)
    elif re.search(r"^\s*IPsec Tunnel #\d", text, re.I | re.M):
        conn = _parse_text(text, file, ike)
    else:
        raise InputError(
            "(file)",
            "neither AWS's CustomerGatewayConfiguration XML nor its Generic text "
            "configuration (no <vpn_connection> and no 'IPSec Tunnel #1')",
            file,
        )
    if len(conn.tunnels) != 2:
        raise InputError(
            "ipsec_tunnel" if conn.format == "xml" else "IPSec Tunnel #2",
            f"{len(conn.tunnels)} tunnel(s) found; an AWS VPN connection has two "
            "(is the file cut short?)",
            file,
        )
    return conn


def _from_json(text: str, file: str) -> str:
    """``aws ec2 describe-vpn-connections`` output: the first connection's XML."""
    try:
        data = json.loads(text)
        conns = data.get("VpnConnections") or [data]
        xml = conns[0]["CustomerGatewayConfiguration"]
    except json.JSONDecodeError as exc:
        raise InputError(f"line {exc.lineno}", f"not valid JSON: {exc.msg}", file) from None
    except (AttributeError, IndexError, KeyError, TypeError):
        raise InputError("VpnConnections.0.CustomerGatewayConfiguration", "missing", file) from None
    if not isinstance(xml, str):
        raise InputError("VpnConnections.0.CustomerGatewayConfiguration", "not a string", file)
    return xml.lstrip()


# XML ----------------------------------------------------------------------------------------
def _parse_xml(text: str, file: str, ike: int | None) -> AwsConnection:
    # The file comes from outside: no DTD, so no entity expansion (billion laughs, external
    # entities) can happen in expat. AWS's documents never carry one.
    if re.search(r"<!(DOCTYPE|ENTITY)", text, re.I):
        raise InputError("(file)", "a DOCTYPE or ENTITY declaration is refused in AWS XML", file)
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        line, col = exc.position
        why = str(exc).split(":")[0]
        raise InputError(
            f"line {line}, column {col + 1}", f"not well-formed XML: {why}", file
        ) from None
    if root.tag != "vpn_connection":
        raise InputError("(top level)", f"<{root.tag}> is not <vpn_connection>", file)
    warnings: list[str] = []
    tunnels = [
        _xml_tunnel(el, n, file, ike, warnings)
        for n, el in enumerate(root.findall("ipsec_tunnel"), start=1)
    ]
    return AwsConnection(file, "xml", root.get("id"), tunnels, warnings)


class _Xml:
    """Reads one <ipsec_tunnel>, naming each missing or bad element by its path."""

    def __init__(self, el: ET.Element, n: int, file: str) -> None:
        self.el, self.n, self.file = el, n, file
        self.read: set[str] = set()

    def unread(self) -> dict[str, str]:
        """path -> text of every leaf element no ``get`` asked for."""
        out = {}

        def walk(el: ET.Element, path: str) -> None:
            children = list(el)
            if not children and path and path not in self.read:
                out[path] = (el.text or "").strip()
            for c in children:
                walk(c, f"{path}/{c.tag}" if path else c.tag)

        walk(self.el, "")
        return out

    def where(self, path: str) -> str:
        return f"ipsec_tunnel[{self.n}]/{path}"

    def get(self, path: str, required: bool = True) -> str | None:
        self.read.add(path)
        found = self.el.find(path)
        value = (found.text or "").strip() if found is not None else ""
        if not value and required:
            raise InputError(self.where(path), "missing", self.file)
        return value or None

    def first(self, *paths: str) -> str | None:
        for p in paths:
            if (v := self.get(p, required=False)) is not None:
                return v
        return None


def _xml_tunnel(el: ET.Element, n: int, file: str, ike: int | None, warns: list[str]) -> AwsTunnel:
    x = _Xml(el, n, file)
    ike_mode = x.get("ike/mode", required=False) or "main"
    version = _ike_version(x.get("ike/version", required=False), ike_mode, ike, x.where("ike"))
    if ike_mode != "main":
        warns.append(f"tunnel {n}: IKE mode {ike_mode!r}: the lab runs main mode")
    for item in ("clear_df_bit", "fragmentation_before_encryption", "tcp_mss_adjustment"):
        if (v := x.get(f"ipsec/{item}", required=False)) is not None:
            warns.append(
                f"tunnel {n}: ipsec/{item} = {v}: not modelled (the lab's userspace data "
                "plane has MTU 1400 on ipsec0)"
            )
    protocol = x.get("ipsec/protocol", required=False) or "esp"
    if protocol != "esp":
        raise InputError(x.where("ipsec/protocol"), f"{protocol!r}: only esp is used", file)
    mode = x.get("ipsec/mode", required=False) or "tunnel"
    if mode != "tunnel":
        raise InputError(x.where("ipsec/mode"), f"{mode!r}: AWS tunnels are tunnel mode", file)
    tunnel = AwsTunnel(
        number=n,
        customer_outside=_ip(x, "customer_gateway/tunnel_outside_address/ip_address"),
        vgw_outside=_ip(x, "vpn_gateway/tunnel_outside_address/ip_address"),
        psk=SecretStr(x.get("ike/pre_shared_key") or ""),
        ike=version,
        ike_proposal=_proposal(
            x.get("ike/encryption_protocol"),
            x.get("ike/authentication_protocol"),
            x.get("ike/perfect_forward_secrecy"),
            esp=False,
            where=x.where("ike"),
            file=file,
        ),
        esp_proposal=_proposal(
            x.get("ipsec/encryption_protocol"),
            x.get("ipsec/authentication_protocol"),
            x.get("ipsec/perfect_forward_secrecy", required=False),
            esp=True,
            where=x.where("ipsec"),
            file=file,
        ),
        ike_lifetime=_seconds(x.get("ike/lifetime"), x.where("ike/lifetime"), file),
        child_lifetime=_seconds(x.get("ipsec/lifetime"), x.where("ipsec/lifetime"), file),
        dpd_delay=_seconds(
            x.first("ipsec/dead_peer_detection/delay", "ipsec/dead_peer_detection/interval")
            or "10",
            x.where("ipsec/dead_peer_detection/delay"),
            file,
        ),
        dpd_retries=_seconds(
            x.get("ipsec/dead_peer_detection/retries", required=False) or "3",
            x.where("ipsec/dead_peer_detection/retries"),
            file,
        ),
        customer_inside=_inside(x, "customer_gateway"),
        vgw_inside=_inside(x, "vpn_gateway"),
        customer_asn=_int_or_none(x, "customer_gateway/bgp/asn"),
        vgw_asn=_int_or_none(x, "vpn_gateway/bgp/asn"),
        hold=_hold(x, n, warns),
    )
    # Never dropped silently: every element the lab did not read is named.
    for path, value in sorted(x.unread().items()):
        if path.endswith(("network_mask", "network_cidr")):
            continue  # the inside /30, read whole from ip_address and its prefix
        warns.append(f"tunnel {n}: {path} = {value}: not modelled")
    return _checked(tunnel, x.where, file)


def _hold(x: _Xml, n: int, warns: list[str]) -> int | None:
    """BGP hold time: AWS's, else the customer's (the file gives it on both sides)."""
    vgw = _int_or_none(x, "vpn_gateway/bgp/hold_time")
    customer = _int_or_none(x, "customer_gateway/bgp/hold_time")
    if None not in (vgw, customer) and vgw != customer:
        warns.append(f"tunnel {n}: BGP hold time {customer} s on the customer side, {vgw} s used")
    return vgw or customer


def _ip(x: _Xml, path: str) -> IPv4Address:
    value = x.get(path) or ""
    try:
        return IPv4Address(value)
    except ValueError:
        raise InputError(x.where(path), f"{value!r} is not an IPv4 address", x.file) from None


def _inside(x: _Xml, side: str) -> IPv4Interface | None:
    path = f"{side}/tunnel_inside_address"
    ip = x.get(f"{path}/ip_address", required=False)
    if ip is None:
        return None
    cidr = x.get(f"{path}/network_cidr", required=False) or "30"
    try:
        return IPv4Interface(f"{ip}/{cidr}")
    except ValueError:
        raise InputError(
            x.where(path), f"{ip}/{cidr} is not an IPv4 address with a prefix", x.file
        ) from None


def _int_or_none(x: _Xml, path: str) -> int | None:
    value = x.get(path, required=False)
    if value is None:
        return None
    return _seconds(value, x.where(path), x.file)


# Generic text ---------------------------------------------------------------------------------
TUNNEL = re.compile(r"^\s*IPsec Tunnel #(\d+)\s*$", re.I | re.M)
SECTION = re.compile(r"^\s*#(\d):\s*(.*?)\s*:?\s*$")
ITEM = re.compile(r"^\s*-\s*(.+?)\s*:?\s*:\s*(.*?)\s*$")
SECTIONS = {"1": "Internet Key Exchange Configuration", "2": "IPSec Configuration"}


# Generic-text items the lab does not read because it always does that (value None: any
# value, e.g. the static route's next hop, which is AWS's inside address in the lab too).
AS_THE_LAB_DOES: dict[tuple[str, str], str | None] = {
    ("1", "authentication method"): "pre-shared key",
    ("2", "protocol"): "esp",
    ("2", "mode"): "tunnel",
    ("4", "next hop"): None,
}


def _parse_text(text: str, file: str, ike: int | None) -> AwsConnection:
    found = re.search(r"Your VPN Connection ID\s*:\s*(\S+)", text)
    parts = TUNNEL.split(text)
    warnings: list[str] = []
    tunnels = []
    for i in range(1, len(parts) - 1, 2):
        number, body = int(parts[i]), parts[i + 1]
        tunnels.append(_text_tunnel(number, body, file, ike, warnings))
    return AwsConnection(file, "text", found[1] if found else None, tunnels, warnings)


def _text_items(body: str) -> dict[tuple[str, str], str]:
    """(section, item) -> value; #3's customer/VPN gateway items are told apart by the
    "Outside"/"Inside IP Addresses" heading above them."""
    items: dict[tuple[str, str], str] = {}
    section, heading = "", ""
    for line in body.splitlines():
        if m := SECTION.match(line):
            section, heading = m[1], ""
            continue
        if re.match(r"^\s*(Outside|Inside) IP Addresses", line, re.I):
            heading = line.strip().split()[0].lower()
            continue
        if m := ITEM.match(line):
            key = re.sub(r"\s+", " ", m[1]).strip().rstrip(":").lower()
            if heading:
                key = f"{heading} {key}"
            items.setdefault((section, key), m[2])
    return items


def _text_tunnel(n: int, body: str, file: str, ike: int | None, warns: list[str]) -> AwsTunnel:
    items = _text_items(body)
    read: set[tuple[str, str]] = set()

    def where(path: str) -> str:
        return f"IPSec Tunnel #{n}/{path}"

    def get(section: str, key: str, required: bool = True) -> str | None:
        read.add((section, key.lower()))
        value = items.get((section, key.lower()), "").strip()
        if not value and required:
            heading = SECTIONS.get(section, {"3": "Tunnel Interface", "4": "BGP"}.get(section))
            raise InputError(where(f"#{section} {heading}/{key}"), "missing", file)
        return value or None

    def address(key: str) -> IPv4Address:
        value = get("3", key) or ""
        try:
            return IPv4Address(value)
        except ValueError:
            raise InputError(
                where(f"#3/{key}"), f"{value!r} is not an IPv4 address", file
            ) from None

    def inside(key: str) -> IPv4Interface | None:
        value = get("3", key, required=False)
        if value is None:
            return None
        try:
            return IPv4Interface(value if "/" in value else f"{value}/30")
        except ValueError:
            raise InputError(
                where(f"#3/{key}"), f"{value!r} is not an address/prefix", file
            ) from None

    def number(section: str, key: str, required: bool = True) -> int | None:
        value = get(section, key, required)
        return None if value is None else _seconds(value, where(f"#{section}/{key}"), file)

    mode = get("1", "Phase 1 Negotiation Mode", required=False) or "main"
    if mode.lower() != "main":
        warns.append(f"tunnel {n}: phase 1 mode {mode!r}: the lab runs main mode")
    for key in ("TCP MSS Adjustment", "Clear Don't Fragment Bit", "Fragmentation"):
        if (v := get("2", key, required=False)) is not None:
            warns.append(f"tunnel {n}: {key} = {v}: not modelled (ipsec0 has MTU 1400)")
    bgp = get("4", "Virtual Private Gateway ASN", required=False) is not None
    tunnel = AwsTunnel(
        number=n,
        customer_outside=address("outside customer gateway"),
        vgw_outside=address("outside virtual private gateway"),
        psk=SecretStr(get("1", "Pre-Shared Key") or ""),
        ike=_ike_version(get("1", "IKE version", required=False), mode, ike, where("#1")),
        ike_proposal=_proposal(
            get("1", "Encryption Algorithm"),
            get("1", "Authentication Algorithm"),
            get("1", "Diffie-Hellman", required=False)
            or get("1", "Perfect Forward Secrecy", required=False)
            or _missing(where("#1 Internet Key Exchange Configuration/Diffie-Hellman"), file),
            esp=False,
            where=where("#1"),
            file=file,
        ),
        esp_proposal=_proposal(
            get("2", "Encryption Algorithm"),
            get("2", "Authentication Algorithm"),
            get("2", "Perfect Forward Secrecy", required=False),
            esp=True,
            where=where("#2"),
            file=file,
        ),
        ike_lifetime=number("1", "Lifetime") or 0,
        child_lifetime=number("2", "Lifetime") or 0,
        dpd_delay=number("2", "DPD Interval", required=False) or 10,
        dpd_retries=number("2", "DPD Retries", required=False) or 3,
        customer_inside=inside("inside customer gateway"),
        vgw_inside=inside("inside virtual private gateway"),
        customer_asn=number("4", "Customer Gateway ASN", required=False) if bgp else None,
        vgw_asn=number("4", "Virtual Private Gateway ASN", required=False) if bgp else None,
        hold=number("4", "Neighbor Hold Time", required=False) if bgp else None,
    )
    # Never dropped silently: every item the lab did not read is named.
    for section, key in sorted(set(items) - read):
        value = items[(section, key)].strip()
        if AS_THE_LAB_DOES.get((section, key), "") in (None, value.lower()):
            continue
        warns.append(f"tunnel {n}: #{section} {key} = {value}: not modelled")
    return _checked(tunnel, where, file)


def _missing(where: str, file: str) -> str:
    raise InputError(where, "missing", file)


# shared ---------------------------------------------------------------------------------------
def _checked(t: AwsTunnel, where: Callable[[str], str], file: str) -> AwsTunnel:
    if not t.psk.get_secret_value():
        raise InputError(where("pre-shared key"), "empty", file)
    if t.vgw_asn is not None:
        if t.customer_asn is None:
            raise InputError(where("customer_gateway/bgp/asn"), "missing (BGP tunnel)", file)
        if t.vgw_inside is None or t.customer_inside is None:
            raise InputError(where("tunnel_inside_address"), "missing (BGP tunnel)", file)
        if t.vgw_inside.network != t.customer_inside.network:
            raise InputError(
                where("tunnel_inside_address"),
                f"{t.vgw_inside} and {t.customer_inside} are not in one /30",
                file,
            )
        hosts = list(t.vgw_inside.network.hosts())
        if t.vgw_inside.ip != hosts[0]:
            # The lab gives the provider the first host of the /30, as AWS does.
            raise InputError(
                where("vpn_gateway/tunnel_inside_address"),
                f"{t.vgw_inside.ip}: AWS's end is the first host of {t.vgw_inside.network}",
                file,
            )
    return t


def _ike_version(given: str | None, mode: str, override: int | None, where: str) -> int:
    if given:
        m = re.search(r"([12])\s*$", given)
        if m:
            return int(m[1])
    if override is not None:
        return override
    # AWS's configurations describe IKEv1 main mode unless they name a version.
    return 1


def _key(value: str) -> str:
    return re.sub(r"[^a-z0-9]", "", value.lower())


def _proposal(
    encryption: str | None,
    integrity: str | None,
    dh: str | None,
    *,
    esp: bool,
    where: str,
    file: str,
) -> str:
    what = "ipsec" if esp else "ike"
    enc = ENCRYPTION.get(_key(encryption or ""))
    if enc is None:
        raise InputError(
            f"{where}/encryption_protocol",
            f"unknown encryption algorithm {encryption!r}; known: aes-128-cbc, aes-256-cbc, "
            "aes-128-gcm-16, aes-256-gcm-16",
            file,
        )
    words = [enc]
    if "gcm" not in enc:
        integ = INTEGRITY.get(_key(integrity or ""))
        if integ is None:
            raise InputError(
                f"{where}/authentication_protocol",
                f"unknown {what} authentication algorithm {integrity!r}; known: sha1, "
                "sha2-256, sha2-384, sha2-512 (IPsec: hmac-sha1-96, hmac-sha2-256-128, ...)",
                file,
            )
        words.append(integ)
    elif not esp:
        words.append("prfsha256")
    if dh and _key(dh) not in ("", "none", "disabled", "no"):
        m = re.search(r"(\d+)\s*$", dh)
        group = DH_GROUPS.get(int(m[1])) if m else None
        if group is None:
            raise InputError(
                f"{where}/perfect_forward_secrecy",
                f"unknown Diffie-Hellman group {dh!r}; known: groups "
                f"{', '.join(map(str, DH_GROUPS))}",
                file,
            )
        words.append(group)
    proposal = "-".join(words)
    why = check_proposal(proposal, esp=esp)
    if why:
        raise InputError(f"{where}/perfect_forward_secrecy", why, file)
    return proposal


def _seconds(value: str | None, where: str, file: str) -> int:
    m = re.fullmatch(r"\s*(\d+)\s*(seconds?|s)?\s*", value or "")
    if not m:
        raise InputError(where, f"{value!r} is not a whole number", file)
    return int(m[1])
