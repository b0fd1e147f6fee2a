"""Bring a resolved lab up in named phases, and a killed daemon back.

prepare -> create nodes -> render configs -> start FRR and wire segments -> configure nodes
-> start charon -> load configs -> wait for convergence. FRR starts as early as its files
exist, beside the wiring: bgpd holds a new neighbor a second (its start timer) before
connecting, and that second passes while the rest of the lab comes up. On a runtime whose
wiring renames the nodes' interfaces (Docker), FRR starts after the wiring instead. Each phase is a
function of the running lab that can be called and timed on its own; ``up`` runs them all
and removes the lab if any fails. The wait ends early, with diagnosis's own words, when a
tunnel cannot come up.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

from lab.core.errors import (
    ConvergenceFailed,
    ConvergenceTimeout,
    LabError,
    TunnelFailed,
    WaitTimeout,
)
from lab.core.parallel import each, together
from lab.core.paths import lab_dir
from lab.core.processes import start_detached
from lab.core.waits import wait_until
from lab.daemons import dataplane, nftables, xfrm
from lab.daemons.charon import Charon
from lab.daemons.nftables import Chain
from lab.observe.convergence import Problem, convergence_problems
from lab.observe.diagnose import Diagnosis, diagnose
from lab.render import render_node
from lab.render.swanctl import connections, secrets
from lab.runtime.base import Link
from lab.runtime.netns import lab_namespaces
from lab.session import state
from lab.session.handle import RunningLab
from lab.session.state import LabState
from lab.topology.choices import KERNEL, USERSPACE
from lab.topology.model import Lab, Node
from lab.topology.timers import CONVERGE_TIMEOUT

Progress = Callable[[str, float], None]  # a phase finished, after so many seconds
Pending = Callable[[list[Problem]], None]  # what convergence still waits for
IKE_HOLD = "vpnlab_ike_hold"  # nftables table that holds IKE back while charon restarts
DIAGNOSE_EVERY = 0.5  # seconds between diagnoses of the tunnels still down


def _quiet(phase: str, seconds: float) -> None:
    pass


def _ignore(problems: list[Problem]) -> None:
    pass


# phases -----------------------------------------------------------------------------------
def prepare(lab: Lab, runtime: str) -> RunningLab:
    if lab_namespaces(lab.name) or lab.name in state.names():
        raise LabError(
            f"lab {lab.name!r} is already up (or left over): run 'vpnlab down {lab.name}' first"
        )
    record = LabState(runtime=runtime, started=time.time(), pid=os.getpid())
    state.create(lab, record)
    return RunningLab(lab, record)


def create_nodes(running: RunningLab) -> None:
    """The nodes, and beside them (one after another) the segments they will join."""
    lab = running.lab
    together(
        [
            *(
                lambda n=n: running.runtime.create_node(
                    n.name, n.release, {"net.ipv4.ip_forward": "1" if n.forwarding else "0"}
                )
                for n in lab.nodes.values()
            ),
            lambda: _create_segments(running),
        ]
    )


def _create_segments(running: RunningLab) -> None:
    members: dict[str, int] = {}
    for node in running.lab.nodes.values():
        for i in node.interfaces:
            members[i.segment] = members.get(i.segment, 0) + 1
    for seg, subnet in running.lab.segments.items():
        if seg in members:
            running.runtime.create_segment(seg, subnet, members[seg])


def wire_segments(running: RunningLab) -> None:
    each(
        lambda node: running.runtime.attach(
            node.name, [Link(i.segment, i.name, i.address) for i in node.interfaces]
        ),
        running.lab.nodes.values(),
    )


def render(running: RunningLab) -> None:
    runtime = running.runtime
    lab = running.lab
    # Each gateway's data plane is what its own kernel offers (ESP or not), unless the
    # topology (or 'up --dataplane') asked for one.
    planes = dict(
        each(
            lambda n: (n.name, dataplane.plane_for(lab.dataplane, runtime, n.name)),
            [n for n in lab.nodes.values() if n.charon],
        )
    )
    running.record(dataplane=planes)
    # Where the kernel does the ESP: XFRM interfaces (route mode), policy ranks (policy mode).
    running.replace_lab(lab.on_kernel({n for n, p in planes.items() if p == KERNEL}))

    def write(node: Node) -> None:
        d = runtime.node_dir(node.name)
        files = render_node(
            running.lab,
            node,
            d,
            vici=runtime.vici_uri(node.name),
            userspace=planes.get(node.name) != KERNEL,
        )
        runtime.write_files(node.name, d, files)

    each(write, running.lab.nodes.values())


def configure_nodes(running: RunningLab) -> None:
    def configure(node: Node) -> None:
        # One command per node (on Docker, one exec): its firewall, then the static
        # routes of a node without FRR (FRR nodes get theirs from staticd).
        steps = [
            shlex.join(["nft", "-f", str(running.runtime.node_dir(node.name) / "nftables.nft")])
        ]
        if node.charon and running.dataplane(node.name) == KERNEL:
            # No TUN device to wait for: the tunnel interfaces and inside addresses now.
            steps += xfrm.setup_commands(running.lab, node.name)
            steps += [
                f"ip addr replace {a} dev lo" for a in _policy_inside_addresses(running, node.name)
            ]
        if not node.frr:
            steps += [f"ip route replace {r.to} via {r.via}" for r in node.routes]
        running.runtime.run(node.name, ["sh", "-c", " && ".join(steps)])

    each(configure, running.lab.nodes.values())


def start_frr(running: RunningLab) -> None:
    """FRR on every node at once, once every interface has its name and address: a zebra
    started while the wiring made them missed an address in about one bring-up in seven
    (the connected route never came, and bgpd waited for it for good). Each bgpd's
    one-second start timer then runs while the firewalls and charons come up. The routers'
    iBGP neighbors are passive, so they are listening by the time a gateway's bgpd
    connects."""
    together([f.start for f in running.frrs.values()])


def start_charon(running: RunningLab) -> None:
    together([c.start for c in running.charons.values()])
    each(Charon.wait_ready, running.charons.values())


def start_recorder(running: RunningLab) -> None:
    """The lab's event recorder, in a process of its own (it outlives this command). It
    starts once the lab has converged (or failed to), so that its own start takes no CPU
    from the bring-up, and loses nothing by it: it dates the SAs already up by their age
    (vici) and reads bgpd's log from its first line. Not waited for."""
    directory = lab_dir(running.name)
    argv = [sys.executable, "-m", "lab.observe.recorder", str(directory)]
    running.record(recorder=start_detached(argv, directory / "recorder.log"))


def load_configs(running: RunningLab) -> None:
    lab = running.lab
    each(
        lambda n: _add_inside_addresses(running, n),
        [
            n
            for n in running.charons
            if lab.nodes[n].inside_addresses and running.dataplane(n) == USERSPACE
        ],
    )
    # Responders first, so the initiators' first IKE packet finds a loaded config.
    for kind in ("provider", "customer"):
        each(
            lambda n: _load_connections(running, n),
            [n for n in running.charons if lab.nodes[n].site_kind == kind],
        )


SHARED_POLICY_WAIT = 5.0  # seconds a ranked tunnel may take before the next one starts


def _load_connections(running: RunningLab, node: str) -> None:
    if "swanctl.conf" in running.lab.nodes[node].supplied:
        running.charon(node).load_file(str(running.runtime.node_dir(node) / "swanctl.conf"))
        return
    conns, keys = connections(running.lab, node), secrets(running.lab, node, reveal=True)
    charon = running.charon(node)
    ranked = sorted(
        (rank, t.name)
        for t in running.lab.tunnels_of(node)
        if (rank := t.side(node)[0].policy_rank) is not None
        and t.side(node)[0].start_action == "start"
    )
    if len(ranked) < 2:
        charon.load(conns, keys)
        return
    # Policy-based tunnels on the kernel data plane that share selectors share one policy
    # per direction. Started together, charon 5.9.8 installs both CHILD_SAs at once in two
    # threads, and about one bring-up in five (seen in the guest) ended with the shared fwd
    # policy on tunnel 2's SA while in and out named tunnel 1's: most likely a race in its
    # shared-policy bookkeeping. One at a time, in rank order: a tunnel's CHILD_SA is
    # installed (or has had its chance) before the next starts.
    charon.load({n: c for n, c in conns.items() if n not in dict(ranked).values()}, keys)
    for i, (_, name) in enumerate(ranked):
        charon.load({name: conns[name]}, {})
        if i < len(ranked) - 1:
            # It may not come up at all (a broken exercise): convergence will say so.
            with suppress(WaitTimeout):
                wait_until(
                    lambda name=name: _child_installed(charon, name),
                    bool,
                    timeout=SHARED_POLICY_WAIT,
                    interval=0.05,
                    what=f"{name}'s CHILD_SA on {node}",
                )


def _child_installed(charon: Charon, tunnel: str) -> bool:
    return any(
        c.get("state") == "INSTALLED"
        for entry in charon.list_sas()
        for c in entry.get(tunnel, {}).get("child-sas", {}).values()
    )


def _policy_inside_addresses(running: RunningLab, node: str) -> list:
    """Inside addresses of the node's tunnels that have no XFRM interface to carry them."""
    on_interfaces = {
        t.side(node)[0].inside for t in running.lab.tunnels_of(node) if t.side(node)[0].if_id
    }
    return [a for a in running.lab.nodes[node].inside_addresses if a not in on_interfaces]


def _add_inside_addresses(running: RunningLab, node: str) -> None:
    """BGP inside addresses on the userspace data plane go on its TUN device, ipsec0,
    which charon creates as it starts (and again after a restart)."""
    # One command that fails until charon has created the TUN device: the poll is the add.
    add = " && ".join(
        f"ip addr replace {a} dev ipsec0" for a in running.lab.nodes[node].inside_addresses
    )
    wait_until(
        lambda: running.runtime.run(node, ["sh", "-c", add], check=False).returncode,
        lambda rc: rc == 0,
        timeout=5,
        interval=0.02,
        what=f"ipsec0 on {node} for the inside addresses",
    )


def wait_converged(
    running: RunningLab, timeout: float = CONVERGE_TIMEOUT, pending: Pending = _ignore
) -> None:
    """Wait until every SA, BGP session and route is there. A tunnel that diagnosis finds
    cannot come up (a definitive cause, such as a proposal or key mismatch) is not waited
    for: the others are, then TunnelFailed reports it, long before the timeout."""
    t0 = time.monotonic()
    failed: dict[str, list[Diagnosis]] = {}
    named: list[float] = []  # seconds into the wait when the first definitive cause was found
    last_diagnosis = [0.0]

    def probe() -> tuple[list[Problem], list[Problem]]:
        problems = convergence_problems(running, ignore=set(failed))
        down = {p.tunnel for p in problems if p.kind == "ike" and p.tunnel}
        now = time.monotonic()
        if down and now - last_diagnosis[0] >= DIAGNOSE_EVERY:
            last_diagnosis[0] = now
            for d in _diagnose(running, down | set(failed)):
                if isinstance(d, Diagnosis) and d.definitive and d.tunnel in down:
                    failed.setdefault(d.tunnel, []).append(d)
                    named.append(now - t0)
            if set(failed) & down:
                problems = convergence_problems(running, ignore=set(failed))
        waiting = [p for p in problems if p.tunnel not in failed]
        pending(waiting)
        return waiting, problems

    wait_until(
        probe,
        lambda seen: not seen[0],
        timeout=timeout,
        interval=0.05,
        what=f"lab {running.name} to converge",
        explain=lambda seen: _explain(running, seen[1] or seen[0]),
        error=ConvergenceTimeout,
    )
    if failed:
        took = time.monotonic() - t0
        causes = [d for ds in failed.values() for d in ds]
        others = [t for t in running.lab.tunnels if t not in failed]
        raise TunnelFailed(
            f"lab {running.name}: {', '.join(failed)} cannot come up (diagnosed after "
            f"{named[0]:.1f}s, verdict after {took:.1f}s; not waiting out the {timeout:g}s "
            "timeout)"
            + (f"; {', '.join(others)} converged" if others else "")
            + "\n"
            + _explain(running, [], causes, failed)
        )
    running.record(phase="converged", converged=time.time())


def _explain(
    running: RunningLab,
    problems: list[Problem],
    causes: list[Diagnosis | str] | None = None,
    failed: dict[str, list[Diagnosis]] | None = None,
) -> str:
    """The diagnosed causes, the problems, then what each daemon involved logged."""
    causes = _diagnose(running) if causes is None else causes
    lines = [f"  cause: {d}" for d in causes]
    lines += [f"  - {p}" for p in problems]
    talk = {(p.node, p.tunnel) for p in problems if p.kind == "ike"}
    for tunnel in failed or {}:
        t = running.lab.tunnels[tunnel]
        talk |= {(t.customer.node, tunnel), (t.provider.node, tunnel)}
    for node, tunnel in sorted(talk, key=str):
        lines.append(f"  charon on {node}, {tunnel}:")
        lines.append(_indent(running.charon(node).tunnel_log(tunnel)))
    for node in sorted({p.node for p in problems if p.kind == "bgp"}):
        lines.append(f"  bgpd on {node}:")
        lines.append(_indent(running.frr(node).log_tail(5)))
    return "\n".join(lines)


def _diagnose(running: RunningLab, down: set[str] | None = None) -> list[Diagnosis | str]:
    # A diagnosis is a bonus on top of the timeout report: it must never replace it.
    try:
        return list(diagnose(running, down))
    except Exception as exc:
        return [f"(diagnosis failed: {exc!r})"]


def _indent(text: str) -> str:
    return "\n".join("      " + line for line in text.splitlines())


Phase = tuple[str, Callable[[RunningLab], None]]


def phases(running: RunningLab) -> list[Phase]:
    """The bring-up's phases, in order."""
    return [
        ("create nodes", create_nodes),
        ("render configs", render),
        ("wire segments", wire_segments),
        ("start FRR", start_frr),
        ("configure nodes", configure_nodes),
        ("start charon", start_charon),
        ("load configs", load_configs),
    ]


CONVERGE_PHASE = "wait for convergence"


def up(
    lab: Lab,
    *,
    progress: Progress = _quiet,
    pending: Pending = _ignore,
    timeout: float = CONVERGE_TIMEOUT,
    keep_on_timeout: bool = False,
    runtime: str = "netns",
    record: bool = True,
) -> RunningLab:
    """Deploy ``lab`` and wait until it has converged; then start its event recorder
    (``record=False``: no timeline, for the bench that shows what the recorder costs).

    Any failure (and Ctrl-C) tears the partial lab down, except a convergence failure with
    ``keep_on_timeout``: then the lab stays for inspection and the error says so.
    """
    running = prepare(lab, runtime)
    steps = [*phases(running), (CONVERGE_PHASE, lambda r: wait_converged(r, timeout, pending))]
    try:
        for phase, run in steps:
            t0 = time.monotonic()
            running.record(phase=phase)
            run(running)
            progress(phase, time.monotonic() - t0)
    except ConvergenceFailed as exc:
        if keep_on_timeout:
            if record:
                start_recorder(running)
            exc.args = (
                f"{exc}\nlab {lab.name} left up for inspection; "
                f"'vpnlab down {lab.name}' removes it",
            )
            raise
        running.down()
        raise
    except BaseException:
        running.down()
        raise
    if record:
        start_recorder(running)
    return running


# a daemon back after a kill ------------------------------------------------------------------
def load_charon(running: RunningLab, node: str) -> None:
    """Give a (re)started charon its inside addresses, keys and connections."""
    if running.lab.nodes[node].inside_addresses and running.dataplane(node) == USERSPACE:
        _add_inside_addresses(running, node)
    _load_connections(running, node)


def restart_daemon(running: RunningLab, node: str, daemon: str) -> None:
    """Start a killed daemon again with the lab's configuration."""
    if daemon == "charon":
        with ike_held(running, node):
            if running.dataplane(node) == KERNEL:
                # A killed charon leaves its SAs and policies in the kernel, still carrying
                # traffic; the new one knows none of them. Start it clean, as a rebooted
                # gateway would: the peer's DPD then finds it silent and re-establishes.
                running.runtime.run(
                    node, ["sh", "-c", "ip xfrm state flush && ip xfrm policy flush"]
                )
            running.charon(node).start()
            running.charon(node).wait_ready()
            load_charon(running, node)
    else:
        running.frr(node).restart(daemon)


@contextmanager
def ike_held(running: RunningLab, node: str) -> Iterator[None]:
    """Drop IKE arriving at ``node`` while its charon has no connections loaded yet.
    Such a charon answers a peer's retry with NO_PROPOSAL_CHOSEN, and a strongSwan
    initiator gives up for good on that error (keyingtries only covers silence): the
    tunnel would stay down. Held back, the retry comes again once the config is in."""
    nftables.add_table(
        running.runtime,
        node,
        IKE_HOLD,
        {"input": Chain("input", -300, ["udp dport { 500, 4500 } counter drop"])},
    )
    try:
        yield
    finally:
        nftables.delete_table(running.runtime, node, IKE_HOLD)
