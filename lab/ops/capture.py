"""Packet capture on a node's interface or a whole segment, and, when asked, the keys that
decrypt it, as a Wireshark profile folder beside the pcap.

The capture is tcpdump (``Runtime.capture``), started and waited for until it says it is
listening. Keys come from charon's key log (``lab.daemons.keylog``), which only sees keys
when SAs are negotiated: so taking keys rekeys every tunnel that is up, its IKE_SA then its
CHILD_SAs, from the customer's gateway, with the key log on for just that long. Traffic from
then on is decryptable, and so are the IKE exchanges on the new IKE_SAs (the IKE rekey
itself travels under the old IKE_SA's keys, which nobody logged). On the kernel data plane
the ESP keys are in the kernel's SAs (``ip xfrm state``): they are read from there and
nothing is rekeyed (IKE stays encrypted). Without keys asked for, charon is not touched.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
from dataclasses import dataclass, field
from pathlib import Path

from lab.core.errors import InputError, LabError
from lab.core.waits import wait_until
from lab.daemons import xfrm
from lab.daemons.keylog import KeyLog, parse
from lab.observe import events
from lab.observe.events import Event
from lab.ops import wireshark as ws
from lab.ops.rekey import rekey_once
from lab.runtime.base import Process
from lab.runtime.capture import LISTENING
from lab.session.handle import RunningLab
from lab.topology.choices import KERNEL
from lab.topology.model import Lab
from lab.topology.proposals import keywords

TARGET_FIELD = "NODE:IFACE|SEGMENT"
START_TIMEOUT = 10.0  # tcpdump opening an interface; the image's needs an exec first
STOP_TIMEOUT = 10.0
# Wireshark's preference that turns ESP decryption on; with it in the folder, the folder
# is a complete profile.
PREFERENCES = "# written by vpnlab capture --keys\nesp.enable_encryption_decode: TRUE\n"
TABLES = (ws.ESP_SA, ws.IKEV2, ws.IKEV1, "preferences")


@dataclass(frozen=True)
class Target:
    """Where to capture: a node's interface, or (node None) a whole segment."""

    node: str | None
    name: str

    def __str__(self) -> str:
        return f"{self.node}:{self.name}" if self.node else self.name


def target(lab: Lab, text: str) -> Target:
    """``NODE:IFACE`` or ``SEGMENT``, checked against the lab (InputError naming the field)."""
    node, sep, iface = text.partition(":")
    if not sep:
        if text not in lab.segments:
            raise InputError(
                TARGET_FIELD,
                f"no segment {text!r} in lab {lab.name} (segments: {', '.join(lab.segments)});"
                f" a node's interface is NODE:IFACE",
            )
        return Target(None, text)
    if node not in lab.nodes:
        raise InputError(
            TARGET_FIELD, f"no node {node!r} in lab {lab.name} (nodes: {', '.join(lab.nodes)})"
        )
    names = [i.name for i in lab.nodes[node].interfaces]
    if lab.nodes[node].charon:
        names.append("ipsec0")  # the userspace data plane's TUN: the traffic in clear
        names += xfrm.interfaces(lab, node)  # route mode on the kernel: each tunnel's, in clear
    if iface not in names:
        raise InputError(
            TARGET_FIELD, f"node {node} has no interface {iface!r} (it has: {', '.join(names)})"
        )
    return Target(node, iface)


def keys_folder(pcap: Path) -> Path:
    return pcap.with_name(pcap.name + ".keys")


def tshark_line(pcap: Path, folder: Path) -> str:
    """The command that opens the capture decrypted: the folder as tshark's configuration
    directory (``-C`` takes only a profile's name, not a path)."""
    return (
        f"WIRESHARK_CONFIG_DIR={shlex.quote(str(folder.resolve()))} "
        f"tshark -r {shlex.quote(str(pcap))}"
    )


@dataclass
class Keys:
    """What ``take_keys`` wrote (counts and names only: never key material)."""

    folder: Path
    esp: int = 0
    ike: int = 0
    rekeyed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "tunnel: why"
    missing: list[str] = field(default_factory=list)  # installed SPIs with no keys

    def summary(self) -> str:
        out = (
            f"keys for {self.esp} ESP and {self.ike} IKE SAs in {self.folder} "
            f"(rekeyed: {', '.join(self.rekeyed) or 'none'})"
        )
        if self.skipped:
            out += "; not rekeyed: " + "; ".join(self.skipped)
        if self.missing:
            out += f"; no keys for installed SPIs {', '.join(self.missing)}"
        return out


def _stop_all(logs: list[KeyLog]) -> dict[str, str]:
    """Key logging off on every charon, even when one of them fails."""
    texts, errors = {}, []
    for log in logs:
        try:
            texts[log.node] = log.stop()
        except Exception as exc:  # every logger must be turned off before we raise
            errors.append(exc)
    if errors:
        raise LabError(f"could not turn key logging off everywhere: {errors[0]}") from errors[0]
    return texts


def take_keys(running: RunningLab, folder: Path) -> Keys:
    """Rekey every tunnel that is up with charon's key log on, and write the keys as
    Wireshark's tables into ``folder`` (0700, files 0600)."""
    tunnels = list(running.lab.tunnels.values())
    gateways = list(dict.fromkeys(t.customer.node for t in tunnels))
    if all(running.dataplane(n) == KERNEL for n in gateways):
        return _kernel_keys(running, gateways, folder)
    result = Keys(folder)
    started: list[KeyLog] = []
    try:
        # One gateway per tunnel sees every key of it: the customer's (it has them all).
        for node in gateways:
            log = KeyLog(running.charon(node))
            started.append(log)
            log.start()
        for t in tunnels:
            try:
                rekey_once(running, t.name, "ike", t.customer.node)
                rekey_once(running, t.name, "child", t.customer.node)
                result.rekeyed.append(t.name)
            except LabError as exc:
                result.skipped.append(f"{t.name}: {exc}")
    finally:
        texts = _stop_all(started)
    tables: dict[str, list] = {ws.ESP_SA: [], ws.IKEV2: [], ws.IKEV1: []}
    for node, text in texts.items():
        logged = parse(text)
        sas = {
            int(sa["uniqueid"]): sa for e in running.charon(node).list_sas() for sa in e.values()
        }
        for e in logged.esp:
            tables[ws.ESP_SA].append(
                ws.EspRow(e.spi, e.proposal, e.encryption_key, e.integrity_key)
            )
        for k in logged.ike:
            sa = sas.get(k.uniqueid)
            if sa is None:
                continue  # gone again (rekeyed since): its exchanges are not worth a row
            if k.version == 1:
                tables[ws.IKEV1].append(ws.Ikev1Row(sa["initiator-spi"], k.keys["ka"]))
            else:
                tables[ws.IKEV2].append(
                    ws.Ikev2Row(
                        sa["initiator-spi"],
                        sa["responder-spi"],
                        keywords(sa),
                        k.keys["sk_ei"],
                        k.keys["sk_er"],
                        k.keys.get("sk_ai", ""),
                        k.keys.get("sk_ar", ""),
                    )
                )
        written = {e.spi for e in logged.esp}
        result.missing += [
            spi
            for e in running.charon(node).list_sas()
            for sa in e.values()
            for c in sa.get("child-sas", {}).values()
            if c.get("state") == "INSTALLED"
            for spi in (c.get("spi-in", ""), c.get("spi-out", ""))
            if spi not in written
        ]
    write_tables(folder, tables)
    result.esp, result.ike = len(tables[ws.ESP_SA]), len(tables[ws.IKEV2] + tables[ws.IKEV1])
    return result


def _kernel_keys(running: RunningLab, gateways: list[str], folder: Path) -> Keys:
    """The kernel data plane holds every ESP SA's keys (``ip xfrm state``): written as they
    are, nothing rekeyed. The IKE keys exist only in charon, at negotiation: none here,
    so the capture shows ESP decrypted and IKE exchanges still encrypted."""
    rows = {}
    for node in gateways:
        text = running.runtime.run(node, ["ip", "xfrm", "state"]).stdout
        for sa in xfrm.kernel_sas(text):
            rows[sa.spi] = ws.EspRow(sa.spi, sa.proposal, sa.encryption_key, sa.integrity_key)
    write_tables(folder, {ws.ESP_SA: list(rows.values())})
    return Keys(folder, esp=len(rows))


def write_tables(folder: Path, tables: dict[str, list]) -> None:
    """Wireshark's key tables (file name -> rows; empty ones left out) and the preferences
    that use them, into ``folder``."""
    try:
        files = {name: ws.table(rows) for name, rows in tables.items() if rows}
    except ValueError as exc:  # an algorithm Wireshark has no name for
        raise LabError(f"cannot write Wireshark's key tables: {exc}") from None
    files["preferences"] = PREFERENCES
    write_private(folder, files)


def write_private(folder: Path, files: dict[str, str]) -> None:
    """Write ``files`` into ``folder``: the folder 0700, each file 0600, from creation on;
    tables of an earlier run that this one has no rows for are removed."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    for name in TABLES:
        if name not in files:
            (folder / name).unlink(missing_ok=True)
    for name, text in files.items():
        fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
        with os.fdopen(fd, "w") as f:
            f.write(text)


CAPTURED = re.compile(r"(\d+) packets? captured")


@dataclass(frozen=True)
class CaptureResult:
    target: str
    pcap: Path
    packets: int | None  # as tcpdump counted them
    exit_code: int | None


class Capture:
    """tcpdump at ``target`` into ``pcap`` (on this host) from ``start`` to ``stop``; start
    and stop go on the lab's timeline."""

    def __init__(self, running: RunningLab, where: Target, pcap: Path) -> None:
        self.running, self.target, self.pcap = running, where, pcap
        self.process: Process | None = None

    def start(self) -> Capture:
        proc = self.running.runtime.capture(
            self.pcap, interface=self.target.name, node=self.target.node
        )
        self.process = proc
        wait_until(
            lambda: (proc.output(), proc.exit_code),
            lambda v: LISTENING in v[0] or v[1] is not None,
            timeout=START_TIMEOUT,
            interval=0.02,
            what=f"tcpdump to listen on {self.target}",
        )
        if proc.exit_code is not None:
            raise LabError(f"tcpdump on {self.target} ended at once: {proc.output().strip()}")
        self._record(f"capture on {self.target} started, into {self.pcap}", started=True)
        return self

    def wait(self, seconds: float | None) -> bool:
        """Let it run for ``seconds`` (None: until it ends); True if it ended by itself."""
        assert self.process is not None
        return self.process.wait(seconds) is not None

    def stop(self) -> CaptureResult:
        proc = self.process
        assert proc is not None
        proc.stop()  # SIGINT: tcpdump flushes, counts and exits
        code = proc.wait(STOP_TIMEOUT)
        if code is None:
            proc.stop(signal.SIGKILL)
            code = proc.wait(STOP_TIMEOUT)
        m = CAPTURED.search(proc.output())
        result = CaptureResult(str(self.target), self.pcap, int(m[1]) if m else None, code)
        count = f"{result.packets} packets" if result.packets is not None else "stopped"
        self._record(f"capture on {self.target} stopped: {count}", started=False)
        return result

    def record_keys(self, keys: Keys) -> None:
        # Counts and names only: key material never goes on the timeline.
        events.record(
            self.running.name,
            Event(
                kind="capture",
                node=self.target.node,
                text=f"capture on {self.target}: {keys.summary()}",
                data={"keys": str(keys.folder), "esp": keys.esp, "ike": keys.ike},
            ),
        )

    def _record(self, text: str, started: bool) -> None:
        events.record(
            self.running.name,
            Event(
                kind="capture",
                node=self.target.node,
                text=text,
                data={"target": str(self.target), "pcap": str(self.pcap), "started": started},
            ),
        )

    def __enter__(self) -> Capture:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.exit_code is None:
            self.stop()
