"""The IKE/ESP algorithm keywords the lab's strongSwan plugin set can negotiate.

A proposal is strongSwan's dash-separated keyword list, e.g. ``aes256-sha256-modp2048``.
Checking keywords here turns a typo into a validation error instead of a silent
"no acceptable proposal" at run time.
"""

from __future__ import annotations

import re

ENCRYPTION = {
    "aes128",
    "aes192",
    "aes256",
    "3des",
    "aes128gcm8",
    "aes128gcm12",
    "aes128gcm16",
    "aes192gcm16",
    "aes256gcm8",
    "aes256gcm12",
    "aes256gcm16",
    "aes128gcm",
    "aes256gcm",
}
AEAD = {e for e in ENCRYPTION if "gcm" in e}
INTEGRITY = {"md5", "sha1", "sha256", "sha384", "sha512", "aesxcbc"}
PRF = {"prfsha1", "prfsha256", "prfsha384", "prfsha512", "prfmd5"}
DH = {
    "modp1024",
    "modp1536",
    "modp2048",
    "modp3072",
    "modp4096",
    "modp6144",
    "modp8192",
    "ecp256",
    "ecp384",
    "ecp521",
    "modp1024s160",
    "modp2048s224",
    "modp2048s256",
    "curve25519",
    "x25519",
}
ESN = {"esn", "noesn"}


def check_proposal(proposal: str, *, esp: bool) -> str | None:
    """Return why ``proposal`` is not usable, or None when it is."""
    if proposal == "default":
        return None
    tokens = proposal.split("-")
    known = ENCRYPTION | INTEGRITY | DH | (ESN if esp else PRF)
    for token in tokens:
        if token not in known:
            return f"unknown algorithm {token!r} in proposal {proposal!r}"
    if not any(t in ENCRYPTION for t in tokens):
        return f"proposal {proposal!r} names no encryption algorithm"
    aead = any(t in AEAD for t in tokens)
    if not aead and not any(t in INTEGRITY for t in tokens):
        return f"proposal {proposal!r} names no integrity algorithm"
    if not esp and not any(t in DH for t in tokens):
        return f"IKE proposal {proposal!r} names no DH group"
    return None


# strongSwan's names for integrity algorithms (vici and charon's log) -> proposal keywords.
INTEGRITY_NAMES = {
    "HMAC_SHA1_96": "sha1",
    "HMAC_SHA2_256_128": "sha256",
    "HMAC_SHA2_384_192": "sha384",
    "HMAC_SHA2_512_256": "sha512",
    "HMAC_MD5_96": "md5",
    "AES_XCBC_96": "aesxcbc",
}


def keywords(sa: dict) -> str:
    """An SA's negotiated algorithms (as vici names them) in proposal keywords,
    e.g. ``aes256-sha256-modp2048``: the words engineers write in configs."""
    encr, size = sa.get("encr-alg", ""), sa.get("encr-keysize", "")
    if encr.startswith("AES_GCM_"):
        words = [f"aes{size}gcm{encr.rsplit('_', 1)[1]}"]
    elif encr == "AES_CBC":
        words = [f"aes{size}"]
    else:
        words = [encr.lower().replace("_cbc", "")] if encr else []
    if sa.get("integ-alg"):
        words.append(INTEGRITY_NAMES.get(sa["integ-alg"], sa["integ-alg"].lower()))
    dh = sa.get("dh-group", "")
    if dh:
        words.append(dh.lower().replace("_", ""))
    return "-".join(words)


def logged_keywords(logged: str) -> str:
    """Proposals as charon logs them, in keywords:
    'IKE:AES_CBC_128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024' -> 'aes128-sha1-modp1024'."""
    out = []
    for proposal in logged.split(", "):
        words, integ = [], None
        for alg in proposal.split(":", 1)[-1].split("/"):
            if m := re.fullmatch(r"AES_CBC_(\d+)", alg):
                words.append(f"aes{m[1]}")
            elif m := re.fullmatch(r"AES_GCM_(\d+)_(\d+)", alg):
                words.append(f"aes{m[2]}gcm{m[1]}")
            elif alg in INTEGRITY_NAMES:
                integ = INTEGRITY_NAMES[alg]
                words.append(integ)
            elif m := re.fullmatch(r"PRF_HMAC_(?:SHA2_)?(SHA1|\d+|MD5)", alg):
                prf = {"SHA1": "sha1", "MD5": "md5"}.get(m[1], f"sha{m[1]}")
                if prf != integ:  # the PRF follows the integrity algorithm unless set
                    words.append(f"prf{prf}")
            elif m := re.fullmatch(r"(MODP|ECP|CURVE)_(\d+)", alg):
                words.append(f"{m[1].lower()}{m[2]}")
            elif alg != "NO_EXT_SEQ":
                words.append("esn" if alg == "EXT_SEQ" else alg.lower())
        out.append("-".join(words))
    return ", ".join(out)
