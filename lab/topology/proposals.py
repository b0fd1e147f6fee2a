"""The IKE/ESP algorithm keywords the lab's strongSwan plugin set can negotiate.

A proposal is strongSwan's dash-separated keyword list, e.g. ``aes256-sha256-modp2048``.
Checking keywords here turns a typo into a validation error instead of a silent
"no acceptable proposal" at run time.
"""

from __future__ import annotations

ENCRYPTION = {
    "aes128", "aes192", "aes256", "3des",
    "aes128gcm8", "aes128gcm12", "aes128gcm16", "aes192gcm16",
    "aes256gcm8", "aes256gcm12", "aes256gcm16",
    "aes128gcm", "aes256gcm",
}
AEAD = {e for e in ENCRYPTION if "gcm" in e}
INTEGRITY = {"md5", "sha1", "sha256", "sha384", "sha512", "aesxcbc"}
PRF = {"prfsha1", "prfsha256", "prfsha384", "prfsha512", "prfmd5"}
DH = {
    "modp1024", "modp1536", "modp2048", "modp3072", "modp4096", "modp6144", "modp8192",
    "ecp256", "ecp384", "ecp521", "curve25519", "x25519",
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
