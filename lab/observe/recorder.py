"""The lab's recorder: a process of its own, started by ``up`` and stopped by ``down``,
that writes what the daemons report into the lab's timeline while the lab is up, whether
or not a vpnlab command is running.

    python -m lab.observe.recorder /var/lib/vpnlab/LAB    (the lab's directory)

charon: vici events (IKE/CHILD SA up, down, rekey), pushed, one subscription per gateway,
taken again after a charon restart. bgpd: its log's neighbour changes, read as they are
written by one ``tail -F`` per BGP speaker (one long-lived exec on Docker), with the
prefix count asked for when a session comes up. It ends when the lab's directory goes.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

from lab.core.paths import lab_dir
from lab.observe import events
from lab.observe.events import Event, from_bgpd_log, from_vici
from lab.session.handle import RunningLab

VICI_EVENTS = ["ike-updown", "child-updown", "ike-rekey", "child-rekey"]
MODULE = "lab.observe.recorder"


class Recorder:
    def __init__(self, running: RunningLab) -> None:
        self.running = running
        self.stop = threading.Event()

    def alive(self) -> bool:
        return not self.stop.is_set() and lab_dir(self.running.name).exists()

    def write(self, event: Event) -> None:
        events.record(self.running.name, event)

    def charon(self, node: str) -> None:
        """Relay one gateway's vici events; subscribe again when charon comes back."""
        charon = self.running.charon(node)
        while self.alive():
            try:
                with charon.watch(VICI_EVENTS) as queue:
                    self.already_up(node)
                    while self.alive():
                        try:
                            kind, body = queue.get(timeout=0.5)
                        except Exception:  # queue.Empty: nothing happened in 0.5 s
                            continue
                        for event in from_vici(node, kind, body):
                            self.write(event)
            except Exception:
                # charon is gone (killed by a fault, or the lab is going): try again
                # once it answers; the lab's end ends the loop.
                self.stop.wait(0.5)

    def already_up(self, node: str) -> None:
        """The SAs up when the subscription began (charon may have been quicker than this
        process's start), dated by how long vici says they have been established."""
        now, mono = time.time(), time.monotonic()
        for conn, sa in self.running.charon(node).ike_sas().items():
            if sa.get("state") != "ESTABLISHED":
                continue
            age = float(sa.get("established", 0))
            for event in from_vici(node, "ike-updown", {"up": "yes", conn: sa}):
                self.write(event.model_copy(update={"wall": now - age, "mono": mono - age}))
            for child in sa.get("child-sas", {}).values():
                age = float(child.get("install-time", age))
                body = {"up": "yes", conn: {**sa, "child-sas": {"c": child}}}
                for event in from_vici(node, "child-updown", body):
                    self.write(event.model_copy(update={"wall": now - age, "mono": mono - age}))

    def bgpd(self, node: str) -> None:
        frr = self.running.frr(node)
        tunnels = {str(n.address): n.tunnel for n in self.running.lab.nodes[node].bgp.neighbors}
        proc = self.running.runtime.background(
            node, ["tail", "-n", "+1", "-F", str(frr.dir / "bgpd.log")]
        )
        # The reader ends with its node: the recorder stops after the nodes are gone.
        seen = 0
        while self.alive():
            text = proc.output()
            whole = text.rfind("\n", seen) + 1  # complete lines only: the rest comes later
            new, seen = text[seen:whole], max(seen, whole)
            for line in new.splitlines():
                event = from_bgpd_log(node, line)
                if event is None:
                    continue
                peer = event.data["peer"]
                self.write(event.model_copy(update={"tunnel": tunnels.get(peer)}))
                if event.data["state"] == "Up":
                    # Apart: waiting for its updates must not hold the next lines back
                    # (they are stamped when read).
                    threading.Thread(
                        target=self.prefixes, args=(node, peer, tunnels.get(peer)), daemon=True
                    ).start()
            self.stop.wait(0.3)

    def prefixes(self, node: str, peer: str, tunnel: str | None) -> None:
        """How many prefixes a session that just came up received, once its first
        updates are in (up to 5 s after it came up)."""
        frr, count = self.running.frr(node), 0
        deadline = time.monotonic() + 5
        while self.alive() and time.monotonic() < deadline:
            count = int(frr.bgp_peers().get(peer, {}).get("pfxRcd") or 0)
            if count:
                break
            self.stop.wait(0.2)
        self.write(
            Event(
                kind="bgp",
                node=node,
                tunnel=tunnel,
                text=f"BGP {peer}: {count} prefixes received",
                data={"peer": peer, "prefixes_received": count},
            )
        )

    def run(self) -> None:
        lab = self.running.lab
        workers = [
            threading.Thread(target=self.charon, args=(n,), daemon=True)
            for n, node in lab.nodes.items()
            if node.charon
        ]
        workers += [
            threading.Thread(target=self.bgpd, args=(n,), daemon=True)
            for n, node in lab.nodes.items()
            if node.bgp is not None
        ]
        for w in workers:
            w.start()
        while self.alive():
            self.stop.wait(0.5)
        for w in workers:
            w.join(2)


def main(argv: list[str]) -> int:
    # The lab's directory, not its name, on the command line: cleanup finds every process
    # whose command line holds a lab's path (stray_daemons).
    (directory,) = argv
    name = os.path.basename(directory.rstrip("/"))
    recorder = Recorder(RunningLab.attach(name))
    signal.signal(signal.SIGTERM, lambda *_: recorder.stop.set())
    recorder.write(Event(kind="recorder", text=f"recording lab {name} (pid {os.getpid()})"))
    recorder.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
