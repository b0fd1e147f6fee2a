"""`vpnlab capture`: a pcap of the internet segment that tshark decrypts with the keys
folder, and no key anywhere else.

Runbook, per lab (IKEv2 and IKEv1, on each runtime):
1. `vpnlab capture internet --keys` (the real command, in a process of its own); once it
   says it has the keys, ping app -> pc; Ctrl-C. tshark with the printed line shows the
   inner ICMP between the LAN hosts and the IKE exchanges on the new IKE_SAs decrypted
   (IKEv2: CREATE_CHILD_SA traffic selectors; IKEv1: Quick Mode identities); without the
   folder it shows neither. The folder is 0700 and its files 0600; no key logger is left
   on any gateway, and the keys are in none of the lab's files.
2. Take the keys of the live SAs through the library, then `vpnlab capture internet`
   without --keys: nothing is rekeyed (same SPIs), no folder is written, and neither those
   keys nor the PSK are in the pcap, the command's output, the timeline or any node's files.
On the kernel data plane the ESP keys are read from the kernel's SAs: nothing is rekeyed,
so no IKE exchange is captured or decrypted (the difference is asserted).
"""

from __future__ import annotations

import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from lab.cli import main
from lab.core.paths import lab_dir
from lab.core.waits import wait_until
from lab.daemons.keylog import CONF, KEYLOG_DIR, LOG
from lab.observe import events
from lab.ops import capture as ops
from lab.ops.traffic import ping
from lab.ops.wireshark import ESP_SA, IKEV1, IKEV2

# IKEv2 on the kernel data plane too: its ESP keys come from the kernel, nothing rekeyed.
# On the kernel data plane too, and on every runtime (the capture runs through it).
LABS = [
    pytest.param("tray-bgp-ikev2.yaml", marks=[pytest.mark.kernel, pytest.mark.every_runtime]),
    "tray-bgp-ikev1.yaml",
]
PC, APP = "172.16.1.100", "10.10.0.100"


class Cli:
    """`python -m lab.cli ...` in a process of its own, its output gathered as it comes."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lab.cli", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, words: str, timeout: float = 60) -> None:
        wait_until(
            lambda: (self.text, self.proc.poll()),
            lambda v: words in v[0] or v[1] is not None,
            timeout=timeout,
            interval=0.05,
            what=f"the command to say {words!r}",
            explain=lambda v: v[0],
        )
        assert words in self.text, self.text

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)  # as Ctrl-C does
        code = self.proc.wait(30)
        self._reader.join(5)
        return code


def tshark(pcap: Path, keys: Path | None, *args: str) -> list[str]:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(pcap.parent)}
    if keys is not None:
        env["WIRESHARK_CONFIG_DIR"] = str(keys)
    proc = subprocess.run(
        ["tshark", "-r", str(pcap), *args], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    # A bad row in a profile's table is only an error message (exit 0): none allowed.
    said = [line for line in proc.stderr.splitlines() if "Running as user" not in line]
    assert not said, said
    return [line for line in proc.stdout.splitlines() if line.strip()]


def icmp(pcap: Path, keys: Path | None) -> set[tuple[str, str, str]]:
    rows = tshark(pcap, keys, "-Y", "icmp", "-T", "fields", "-e", "ip.src", "-e", "ip.dst",
                  "-e", "icmp.type")  # fmt: skip
    # ESP-in-UDP: the outer header's addresses come first, the inner ones last.
    return {(r.split("\t")[0].split(",")[-1], r.split("\t")[1].split(",")[-1], r.split("\t")[2])
            for r in rows}  # fmt: skip


def ike_payloads(pcap: Path, keys: Path | None, version: int) -> list[str]:
    """Fields only an IKE message's decrypted body has: IKEv2 traffic selectors
    (CREATE_CHILD_SA), IKEv1 identities (Quick Mode)."""
    field = "isakmp.ts.start_ipv4" if version == 2 else "isakmp.id.data.ipv4_addr"
    return tshark(pcap, keys, "-Y", field, "-T", "fields", "-e", field)


def key_hex(folder: Path) -> list[str]:
    """Every key in a keys folder's tables, as hex."""
    found = []
    for name in (ESP_SA, IKEV2, IKEV1):
        table = folder / name
        if not table.exists():
            continue
        for line in table.read_text().splitlines():
            if line.startswith("#"):
                continue
            for field in line.split(","):
                value = field.strip('"').removeprefix("0x")
                if len(value) >= 32 and all(c in "0123456789abcdef" for c in value):
                    found.append(value)
    assert found, f"no keys in {folder}"
    return found


def needles(keys: list[str], psk: str | None = None) -> dict[str, bytes]:
    """What a leak would look like: a key as hex, as charon dumps it ("6E 32 E5 .."), as
    raw bytes (a pcap); the PSK as text."""
    out = {}
    for k in keys:
        raw = bytes.fromhex(k)
        out[f"{k[:8]}.. as hex"] = k.encode()
        out[f"{k[:8]}.. as a dump"] = " ".join(f"{b:02X}" for b in raw[:8]).encode()
        out[f"{k[:8]}.. as bytes"] = raw
    if psk:
        out["the PSK"] = psk.encode()
    return out


def leaks(lab, found: dict[str, bytes], extra: list[Path] = ()) -> list[str]:
    """Where any needle occurs: the lab's files on this host (but its 0600 state file, which
    holds the PSK by design), every node's files, and ``extra`` files."""
    hits = []

    def check(where: str, data: bytes) -> None:
        hits.extend(f"{what} in {where}" for what, n in found.items() if n in data)

    for path in [*lab_dir(lab.name).rglob("*"), *extra]:
        if path.is_file() and path.name != "lab.json":
            check(str(path), path.read_bytes())
    for node in lab.lab.nodes:
        d = lab.runtime.node_dir(node)
        files = lab.runtime.run(node, ["find", str(d), "-type", "f"]).stdout.split()
        for f in files:
            text = lab.runtime.read_file(node, Path(f)) or ""
            check(f"{node}:{f}", text.encode())
    return hits


def spis(lab) -> set[str]:
    """Inbound SPIs of the installed CHILD_SAs (a rekeyed IKEv2 SA lingers for a few
    seconds as it is deleted)."""
    return {
        c["spi-in"]
        for node in lab.charons
        for entry in lab.charon(node).list_sas()
        for sa in entry.values()
        for c in sa.get("child-sas", {}).values()
        if c.get("state") == "INSTALLED"
    }


def kernel_plane(lab) -> bool:
    return all(lab.dataplane(t.customer.node) == "kernel" for t in lab.lab.tunnels.values())


def version(lab) -> int:
    return next(iter(lab.lab.tunnels.values())).customer.ike


@pytest.mark.parametrize("lab", LABS, indirect=True)
def test_keys_decrypt_a_capture_of_the_internet_segment(lab, tmp_path):
    pcap = tmp_path / "internet.pcap"
    cli = Cli("capture", "internet", "-o", str(pcap), "--keys", "--lab", lab.name)
    cli.wait_for("keys for ")
    assert ping(lab, "app", PC).received == 5
    assert cli.interrupt() == 0, cli.text
    folder = ops.keys_folder(pcap)
    assert ops.tshark_line(pcap, folder) in cli.text.replace("\n", "")

    seen = icmp(pcap, folder)
    assert {(APP, PC, "8"), (PC, APP, "0")} <= seen, seen
    assert icmp(pcap, None) == set()  # really encrypted: nothing inside without the keys
    kernel = kernel_plane(lab)
    if kernel:
        # The kernel holds the ESP keys: read from it, nothing rekeyed, so no IKE exchange
        # was captured (and charon, which alone knows IKE keys, gave none).
        assert "(rekeyed: none)" in cli.text, cli.text
        assert not (folder / IKEV2).exists() and not (folder / IKEV1).exists()
    else:
        decrypted = ike_payloads(pcap, folder, version(lab))
        assert any("172.16.1.0" in row for row in decrypted), decrypted
    assert ike_payloads(pcap, None, version(lab)) == []

    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert {p.name for p in folder.iterdir()} >= {ESP_SA, "preferences"}
    assert kernel or (folder / (IKEV2 if version(lab) == 2 else IKEV1)).exists()
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in folder.iterdir())
    for t in lab.lab.tunnels.values():  # key logging is off again, its log gone
        d = lab.runtime.node_dir(t.customer.node)
        for left in (d / KEYLOG_DIR / CONF, d / LOG):
            assert lab.runtime.read_file(t.customer.node, left) is None, left
    assert leaks(lab, needles(key_hex(folder))) == []
    texts = [e.text for e in events.read(lab.name) if e.kind == "capture"]
    assert any("started" in t for t in texts) and any("stopped" in t for t in texts)
    assert any("keys for" in t for t in texts), texts


@pytest.mark.parametrize("lab", LABS, indirect=True)
def test_without_keys_nothing_is_rekeyed_and_no_key_is_anywhere(lab, tmp_path):
    live = ops.take_keys(lab, tmp_path / "live.keys")  # the keys of the SAs now in use
    rekeyed = [] if kernel_plane(lab) else list(lab.lab.tunnels)  # kernel: keys read, not made
    assert live.rekeyed == rekeyed and not live.missing, live.summary()
    before = spis(lab)
    pcap = tmp_path / "plain.pcap"
    cli = Cli("capture", "internet", "-o", str(pcap), "--lab", lab.name)
    cli.wait_for("capturing on internet")
    assert ping(lab, "app", PC).received == 5
    assert cli.interrupt() == 0, cli.text
    assert spis(lab) == before  # no rekey without --keys
    assert not ops.keys_folder(pcap).exists()
    assert "tshark" not in cli.text
    # The SAs whose keys these are carried the pings just captured.
    assert icmp(pcap, live.folder) >= {(APP, PC, "8"), (PC, APP, "0")}
    psk = next(iter(lab.lab.tunnels.values())).customer.psk.get_secret_value()
    output = tmp_path / "output.txt"
    output.write_text(cli.text)
    assert leaks(lab, needles(key_hex(live.folder), psk), extra=[pcap, output]) == []


@pytest.mark.parametrize("lab", LABS[:1], indirect=True)
def test_a_bad_target_exits_2_naming_the_field(lab):
    result = CliRunner().invoke(main, ["capture", "cgw:nope", "--lab", lab.name])
    assert result.exit_code == 2
    assert "NODE:IFACE|SEGMENT: node cgw has no interface 'nope'" in result.output
