"""XFRM interfaces: route-based tunnels on the kernel data plane.

One interface per tunnel, ``xfrm<if_id>``, bound to the tunnel's SAs and policies by
its if_id (swanctl's ``if_id_in``/``if_id_out``), carrying the tunnel's inside address.
What the routing table sends into it is encrypted into that tunnel; BGP runs over it.
The userspace data plane has no if_id: there every tunnel shares ipsec0.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from lab.topology.model import Lab

PREFIX = "xfrm"


def name(if_id: int) -> str:
    return f"{PREFIX}{if_id}"


def interfaces(lab: Lab, node: str) -> dict[str, str]:
    """Interface name -> tunnel, for the node's route-based tunnels."""
    out = {}
    for t in lab.tunnels_of(node):
        local = t.side(node)[0]
        if local.if_id is not None:
            out[name(local.if_id)] = t.name
    return out


def setup_commands(lab: Lab, node: str) -> list[str]:
    """Shell commands that create the node's XFRM interfaces and put the inside addresses
    on them (run once, before charon installs the SAs)."""
    by_address = {i.address.ip: i.name for i in lab.nodes[node].interfaces}
    steps = []
    for t in lab.tunnels_of(node):
        local = t.side(node)[0]
        if local.if_id is None:
            continue
        dev = name(local.if_id)
        # Bound to the outside interface (dev): the encrypted packets leave from there.
        steps.append(
            f"ip link add {dev} type xfrm dev {by_address[local.address]} if_id {local.if_id}"
        )
        steps.append(shlex.join(["ip", "link", "set", dev, "alias", f"tunnel {t.name}", "up"]))
        if local.inside is not None:
            steps.append(f"ip addr replace {local.inside} dev {dev}")
    return steps


# The kernel's algorithm names -> strongSwan's proposal keywords (key sizes from the keys).
_INTEGRITY = {
    "hmac(sha1)": "sha1",
    "hmac(sha256)": "sha256",
    "hmac(sha384)": "sha384",
    "hmac(sha512)": "sha512",
}
_STATE = re.compile(r"^src (\S+) dst (\S+)\n(.*?)(?=^src |\Z)", re.M | re.S)


@dataclass(frozen=True)
class KernelSa:
    """One ESP SA as the kernel holds it (``ip xfrm state``), keys included."""

    src: str
    dst: str
    spi: str  # 8 hex digits
    proposal: str  # keywords, e.g. aes256-sha256 or aes128gcm16
    encryption_key: str  # hex (AEAD: key and salt)
    integrity_key: str  # hex; empty with AEAD


def kernel_sas(text: str) -> list[KernelSa]:
    """Pure: the ESP SAs in ``ip xfrm state`` output (the kernel data plane keeps every
    SA's keys there, so a capture needs no rekey to be decrypted)."""
    sas = []
    for src, dst, body in _STATE.findall(text):
        spi = re.search(r"proto esp spi 0x([0-9a-f]+)", body)
        if not spi:
            continue
        aead = re.search(r"aead rfc4106\(gcm\(aes\)\) 0x([0-9a-f]+) (\d+)", body)
        enc = re.search(r"enc (\S+) 0x([0-9a-f]+)", body)
        auth = re.search(r"auth-trunc (\S+) 0x([0-9a-f]+)", body)
        if aead:
            key, icv = aead.group(1), int(aead.group(2)) // 8
            proposal, enc_key, int_key = f"aes{(len(key) // 2 - 4) * 8}gcm{icv}", key, ""
        elif enc and auth and enc.group(1) == "cbc(aes)":
            words = [f"aes{len(enc.group(2)) * 4}", _INTEGRITY.get(auth.group(1), auth.group(1))]
            proposal, enc_key, int_key = "-".join(words), enc.group(2), auth.group(2)
        else:
            continue  # an algorithm this lab does not configure
        sas.append(KernelSa(src, dst, spi.group(1).zfill(8), proposal, enc_key, int_key))
    return sas


def counts(states: str, policies: str) -> tuple[int, int]:
    """Pure: (SAs, tunnel policies) in ``ip xfrm state`` and ``ip xfrm policy`` output. The
    per-socket bypass policies charon sets on its IKE sockets carry no template: not counted."""
    return len(_STATE.findall(states)), sum("tmpl" in b for b in policies.split("src ")[1:])
