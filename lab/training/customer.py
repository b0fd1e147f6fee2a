"""The customer's gateway, handled the way its engineer would: files written inside the node,
then ``swanctl --load-all`` and vtysh, tunnels restarted, its own nftables firewall."""

from __future__ import annotations

import shlex

from lab.core.errors import LabError
from lab.core.waits import wait_until
from lab.session.handle import RunningLab

FIREWALL_FILE = "firewall.nft"


def swanctl(running: RunningLab, node: str, *args: str) -> list[str]:
    """A swanctl command line for the node's charon (its vici socket is not the default)."""
    return ["swanctl", *args, "--uri", running.runtime.vici_uri(node)]


def vtysh(running: RunningLab, node: str, *args: str) -> list[str]:
    return ["vtysh", "--vty_socket", str(running.runtime.node_dir(node) / "frr"), *args]


def install(running: RunningLab, node: str, files: dict[str, str]) -> None:
    """Write the customer's swanctl.conf / frr.conf into its node and load them."""
    directory = running.runtime.node_dir(node)
    running.runtime.write_files(node, directory, files)
    if "swanctl.conf" in files:
        running.charon(node).load_file(str(directory / "swanctl.conf"))
    if "frr.conf" in files:
        # vtysh -f adds to the running configuration: the old BGP instance goes first, so
        # that a statement left out of the file is gone from bgpd too.
        asn = running.lab.nodes[node].bgp.asn
        running.exec(node, vtysh(running, node, "-c", "configure terminal",
                                 "-c", f"no router bgp {asn}"))  # fmt: skip
        proc = running.exec(node, vtysh(running, node, "-f", str(directory / "frr.conf")))
        if proc.returncode != 0:
            raise LabError(f"{node}: vtysh refused frr.conf: {(proc.stdout + proc.stderr)[-400:]}")


def restart_tunnels(running: RunningLab, node: str, tunnels: list[str]) -> None:
    """Tear the tunnels' IKE SAs down on ``node`` and initiate them again (not waited
    for): a changed key or a new DPD setting only applies to SAs negotiated after it."""
    charon = running.charon(node)
    for tunnel in tunnels:
        running.exec(node, swanctl(running, node, "--terminate", "--ike", tunnel, "--force"))
    wait_until(
        lambda: set(charon.ike_sas()) & set(tunnels),
        lambda left: not left,
        timeout=5,
        interval=0.05,
        what=f"{', '.join(tunnels)} torn down on {node}",
    )
    for tunnel in tunnels:
        for child in running.lab.tunnels[tunnel].child_sas(node):
            charon.initiate(child.name, timeout_ms=-1)  # -1: vici answers at once


def set_firewall(running: RunningLab, node: str, family: str, table: str, text: str | None) -> None:
    """Replace the customer's firewall table with ``text`` (None: remove it), from a file
    in its node, as ``nft -f`` would load it there."""
    directory = running.runtime.node_dir(node)
    steps = [f"nft delete table {family} {table} 2>/dev/null || true"]
    if text is not None:
        running.runtime.write_files(node, directory, {FIREWALL_FILE: text})
        steps.append(shlex.join(["nft", "-f", str(directory / FIREWALL_FILE)]))
    running.runtime.run(node, ["sh", "-c", " && ".join(steps)])
