"""IKE and ESP keys from charon's own debug log, taken only while asked for.

Why this source: Debian 12's strongSwan 5.9.8 ships no ``save-keys`` plugin, and the
userspace data plane (kernel-libipsec) keeps its SAs inside charon, so there is no kernel SA
state (``ip xfrm state``) to read. vici's ``log`` event stream is capped at level 1 by charon
(vici_logger.c: "anything higher might produce a loop"). What remains is charon's file
logger at level 4 of the ``ike`` and ``chd`` groups, where keymat_v1/v2 dump SK_e*/SK_a*
(IKEv2), Ka (IKEv1) and every CHILD_SA's encryption and integrity keys, and child_sa.c logs
each SA it installs with its SPI and addresses (level 2).

strongswan.conf includes ``keylog.d/*.conf`` (empty normally). ``KeyLog.start`` drops a
file logger for ``keys.log`` there and has charon re-read its settings over vici
(``reload-settings`` reloads the loggers); ``stop`` removes it, reloads again, reads the
log and deletes it. charon's own ``charon.log`` never gets above its usual levels. The keys
exist only while SAs are negotiated, so the caller (re)negotiates them in between.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from lab.daemons.charon import Charon
from lab.topology.proposals import INTEGRITY_NAMES

KEYLOG_DIR = "keylog.d"  # strongswan.conf: include keylog.d/*.conf
CONF = "keys.conf"
LOG = "keys.log"

IKE_KEYS = {
    "Sk_ei secret": "sk_ei",
    "Sk_er secret": "sk_er",
    "Sk_ai secret": "sk_ai",
    "Sk_ar secret": "sk_ar",
    "encryption key Ka": "ka",  # IKEv1
}
CHILD_KEYS = {
    "encryption initiator key": "encr_i",
    "encryption responder key": "encr_r",
    "integrity initiator key": "integ_i",
    "integrity responder key": "integ_r",
}

# "08[IKE] <tunnel1|3> message" (no time format); the IKE_SA part is "<uid>" before the SA
# has a config, and absent outside any IKE_SA.
LINE = re.compile(r"^(\d+)\[([A-Z]+)\](?: <(?:([^|>]*)\|)?(\d+)>)? (.*)$")
CHUNK = re.compile(r"^(.+?) => (\d+) bytes @ \S+$")
HEX = re.compile(r"^\s*\d+: ((?:[0-9A-F]{2} ){0,15}[0-9A-F]{2})")
PARSED = re.compile(r"^parsed \S+ (request|response) ")
USING = re.compile(r"^\s*using (\S+) for (encryption|integrity)$")
INSTALL = re.compile(r"^(?:adding (inbound|outbound)|registering (outbound)) ESP SA$")
SA = re.compile(r"^\s*SPI 0x([0-9a-f]{8}), src (\S+) dst (\S+)$")
IKE_UP = re.compile(r"^IKE_SA (\S+)\[(\d+)\] (?:established|rekeyed) between ")


def keylog_conf(log: PurePosixPath) -> str:
    """The file logger that writes keys: level 4 for ``ike``/``chd`` (the key dumps), 1 for
    ``enc`` (which message a thread parsed: who initiated the exchange), nothing else."""
    return (
        "# written by vpnlab capture --keys while it takes keys; removed afterwards\n"
        "charon {\n    filelog {\n        vpnlab-keys {\n"
        f"            path = {log}\n"
        "            ike_name = yes\n            flush_line = yes\n"
        "            default = -1\n            ike = 4\n            chd = 4\n"
        "            enc = 1\n"
        "        }\n    }\n}\n"
    )


@dataclass(frozen=True)
class EspKeys:
    """One direction of a CHILD_SA, as installed: its SPI, outer addresses and keys."""

    spi: str  # 8 hex digits
    src: str
    dst: str
    encryption: str  # strongSwan's name: AES_CBC, AES_GCM_16, 3DES
    encryption_key: str  # hex (AEAD: key and salt)
    integrity: str | None  # HMAC_SHA2_256_128...; None with AEAD
    integrity_key: str
    tunnel: str | None

    @property
    def proposal(self) -> str:
        """Its algorithms in proposal keywords (``aes256-sha256``, ``aes128gcm16``); the
        key size comes from the key (an AES-GCM key carries a 4-byte salt)."""
        size = len(self.encryption_key) // 2
        if self.encryption.startswith("AES_GCM_"):
            words = [f"aes{(size - 4) * 8}gcm{self.encryption.rsplit('_', 1)[1]}"]
        elif self.encryption == "AES_CBC":
            words = [f"aes{size * 8}"]
        else:
            words = [self.encryption.lower()]
        if self.integrity:
            words.append(INTEGRITY_NAMES.get(self.integrity, self.integrity.lower()))
        return "-".join(words)


@dataclass(frozen=True)
class IkeKeys:
    """An IKE_SA's keys: IKEv2 sk_ei/sk_er/sk_ai/sk_ar, IKEv1 ka."""

    tunnel: str
    uniqueid: int
    keys: dict[str, str]

    @property
    def version(self) -> int:
        return 1 if "ka" in self.keys else 2


@dataclass
class LoggedKeys:
    ike: list[IkeKeys] = field(default_factory=list)
    esp: list[EspKeys] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)  # SPIs installed without usable keys


@dataclass
class _Thread:
    """What one charon thread is doing: a job runs on one thread from the message it
    parsed to the SAs it installed."""

    role: str | None = None  # initiator / responder of the exchange it processes
    algorithms: dict[str, str] = field(default_factory=dict)
    child: dict[str, str] = field(default_factory=dict)
    chunk: tuple[str, int, int | None] | None = None  # (name, length, IKE_SA uid)
    hex: list[str] = field(default_factory=list)
    installing: str | None = None  # inbound / outbound, until its SPI line


def _child_key(role: str, direction: str) -> str:
    """Which side's keys protect an SA: the initiator's keys protect initiator-to-responder
    traffic, i.e. the initiator's outbound and the responder's inbound SA."""
    return "i" if (role == "initiator") == (direction == "outbound") else "r"


def parse(text: str) -> LoggedKeys:
    """Pure: the keys in a ``keylog_conf`` log, each tied to its SA. Every other secret in
    it (DH secrets, SKEYSEED, the PSK) is read past and never kept."""
    out = LoggedKeys()
    threads: dict[str, _Thread] = {}
    pending_ike: dict[int, dict[str, str]] = {}  # IKE_SA uid in the prefix -> keys
    seen: set[str] = set()
    for raw in text.splitlines():
        m = LINE.match(raw)
        if not m:
            continue
        thread_id, _, conn, uid, msg = m.groups()
        t = threads.setdefault(thread_id, _Thread())
        if t.chunk is not None:
            if h := HEX.match(msg):
                t.hex.extend(h[1].split())
                name, length, owner = t.chunk
                if len(t.hex) >= length:
                    value = "".join(t.hex[:length]).lower()
                    if name in IKE_KEYS and owner is not None:
                        pending_ike.setdefault(owner, {})[IKE_KEYS[name]] = value
                    elif name in CHILD_KEYS:
                        t.child[CHILD_KEYS[name]] = value
                    t.chunk, t.hex = None, []
                continue
            t.chunk, t.hex = None, []  # cut short: drop it
        if c := CHUNK.match(msg):
            name, length = c[1], int(c[2])
            if (name in IKE_KEYS or name in CHILD_KEYS) and length:
                t.chunk = (name, length, int(uid) if uid else None)
        elif p := PARSED.match(msg):
            t.role = "initiator" if p[1] == "response" else "responder"
            t.algorithms, t.child = {}, {}
        elif u := USING.match(msg):
            t.algorithms[u[2]] = u[1]
        elif i := INSTALL.match(msg):
            t.installing = i[1] or i[2]
        elif (s := SA.match(msg)) and t.installing:
            direction, t.installing = t.installing, None
            spi, src, dst = s.groups()
            if spi in seen:
                continue  # "registering outbound" first, "adding outbound" later
            side = _child_key(t.role, direction) if t.role else None
            encr = t.child.get(f"encr_{side}")
            if side is None or encr is None or "encryption" not in t.algorithms:
                out.unmatched.append(spi)
                continue
            seen.add(spi)
            out.esp.append(
                EspKeys(
                    spi=spi,
                    src=src,
                    dst=dst,
                    encryption=t.algorithms["encryption"],
                    encryption_key=encr,
                    integrity=t.algorithms.get("integrity"),
                    integrity_key=t.child.get(f"integ_{side}", ""),
                    tunnel=conn,
                )
            )
        elif up := IKE_UP.match(msg):
            new = int(up[2])
            # Initial SA: keys under its own uid. IKEv2 rekey: the initiator derives them
            # under the old SA's uid, the responder under the new one's.
            keys = pending_ike.pop(int(uid), None) if uid else None
            keys = keys or pending_ike.pop(new, None)
            if keys:
                out.ike.append(IkeKeys(up[1], new, keys))
    return out


class KeyLog:
    """Key logging on one gateway's charon, on only between ``start`` and ``stop``."""

    def __init__(self, charon: Charon) -> None:
        self.charon = charon
        self.runtime, self.node = charon.runtime, charon.node
        self.conf_dir = charon.dir / KEYLOG_DIR
        self.log = charon.dir / LOG

    def start(self) -> None:
        # The log exists first, mode 0600 (write_files' mode): charon appends to it and
        # keeps that mode, so no other user on the machine can read the keys meanwhile.
        self.runtime.write_files(self.node, self.charon.dir, {LOG: ""})
        self.runtime.write_files(self.node, self.conf_dir, {CONF: keylog_conf(self.log)})
        self.charon.reload_settings()

    def stop(self) -> str:
        """Key logging off again, and the log's text; the log is deleted either way."""
        try:
            self.runtime.run(self.node, ["rm", "-f", str(self.conf_dir / CONF)])
            self.charon.reload_settings()
            return self.runtime.read_file(self.node, self.log) or ""
        finally:
            self.runtime.run(self.node, ["rm", "-f", str(self.log)], check=False)
