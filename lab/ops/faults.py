"""Faults: break a lab on purpose, see when, and undo it.

Every fault acts inside the lab's nodes only (vici, signals, links, nftables tables named
``vpnlab_fault_<id>``), is recorded with its start time in the lab's state so any
``vpnlab`` process can list and clear it, and knows how to revert itself. Adding and
clearing hold the lab's lock, so commands run at once never share an id or lose a record.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from lab.core.errors import LabError
from lab.core.parallel import each
from lab.core.waits import wait_until
from lab.daemons import nftables
from lab.daemons.nftables import FAULT_PREFIX, Chain
from lab.observe import events
from lab.observe.events import Event
from lab.ops.bringup import restart_daemon
from lab.session import state
from lab.session.handle import RunningLab
from lab.session.state import FaultRecord as Fault

__all__ = ["FAULTS", "Fault", "active", "clear", "inject"]


@dataclass(frozen=True)
class FaultKind:
    name: str
    help: str
    apply: Callable[..., tuple[str, dict]]  # (running, id, **params) -> (description, undo)
    revert: Callable[[RunningLab, Fault], None]


FAULTS: dict[str, FaultKind] = {}


def fault_kind(name: str, help: str, revert: Callable[[RunningLab, Fault], None]):
    """Register ``apply`` as fault ``name``; names are unique and listed on error."""

    def register(apply: Callable[..., tuple[str, dict]]):
        if name in FAULTS:
            raise ValueError(f"fault kind {name!r} registered twice")
        FAULTS[name] = FaultKind(name, help, apply, revert)
        return apply

    return register


# --- recording -------------------------------------------------------------------------


def active(running: RunningLab) -> list[Fault]:
    return state.read(running.name).faults


def inject(running: RunningLab, kind: str, **params) -> Fault:
    if kind not in FAULTS:
        raise LabError(f"unknown fault {kind!r}; known: {', '.join(sorted(FAULTS))}")
    with state.locked(running.name):
        fault_id = max((f.id for f in active(running)), default=0) + 1
        started = time.time()
        description, undo = FAULTS[kind].apply(running, fault_id, **params)
        fault = Fault(
            id=fault_id,
            kind=kind,
            params=params,
            started=started,
            description=description,
            undo=undo,
        )
        with state.changing(running.name) as s:
            s.faults.append(fault)
        running.state = s
    events.record(
        running.name,
        Event(kind="fault", text=f"#{fault_id} applied: {description}", wall=started,
              data={"id": fault_id, "fault": kind, "applied": True}),
    )  # fmt: skip
    return fault


def clear(running: RunningLab, fault_id: int | None = None) -> list[Fault]:
    """Revert one fault, or all of them (newest first); return what was reverted.

    Clearing all also removes every fault table found in the nodes, recorded or not (one
    left by a crashed command would otherwise drop packets in a lab that looks clean)."""
    with state.locked(running.name):
        faults = active(running)
        chosen = [f for f in faults if fault_id in (None, f.id)]
        if fault_id is not None and not chosen:
            raise LabError(f"no active fault {fault_id} in lab {running.name}")
        for fault in reversed(chosen):
            FAULTS[fault.kind].revert(running, fault)
            with state.changing(running.name) as s:
                s.faults = [f for f in s.faults if f.id != fault.id]
            running.state = s
            events.record(
                running.name,
                Event(kind="fault", text=f"#{fault.id} cleared: {fault.description}",
                      data={"id": fault.id, "fault": fault.kind, "applied": False}),
            )  # fmt: skip
        if fault_id is None:
            each(lambda node: _remove_fault_tables(running, node), running.lab.nodes)
    return chosen


def _remove_fault_tables(running: RunningLab, node: str) -> None:
    for family, table in nftables.tables(running.runtime, node, FAULT_PREFIX):
        nftables.delete_table(running.runtime, node, table, family=family)


# --- nftables-based faults ---------------------------------------------------------------


def _table(fault_id: int) -> str:
    return f"{FAULT_PREFIX}{fault_id}"


def _nft_add(running: RunningLab, node: str, fault_id: int, chains: dict[str, Chain]) -> None:
    nftables.add_table(running.runtime, node, _table(fault_id), chains)


def _nft_revert(running: RunningLab, fault: Fault) -> None:
    for node in fault.undo["nodes"]:
        nftables.delete_table(running.runtime, node, _table(fault.id))


# Before conntrack and everything else on the way in; last on the way out.
def _prerouting(rules: list[str]) -> Chain:
    return Chain("prerouting", -300, rules)


def _output(rules: list[str]) -> Chain:
    return Chain("output", -300, rules)


def _postrouting(rules: list[str]) -> Chain:
    return Chain("postrouting", 300, rules)


# What "IKE" and "ESP" look like on the wire. ESP in UDP (port 4500, always the case on the
# userspace data plane) starts with a non-zero SPI where IKE on 4500 starts with four zero
# bytes (the non-ESP marker, RFC 3948): that is how ESP can be dropped while IKE passes.
MATCH = {
    "ike": ["udp dport { 500, 4500 }"],
    "esp": ["ip protocol esp", "udp dport 4500 @th,64,32 != 0"],
    "all": [""],
}


def _node_of(running: RunningLab, address: str) -> str:
    for node in running.lab.nodes.values():
        if any(str(i.address.ip) == address for i in node.interfaces):
            return node.name
    raise LabError(f"no node of lab {running.name} has address {address}")


def _address_of(running: RunningLab, ref: str, *, seen_from_peer: bool = False) -> str:
    """A node name (its transit address; as its peer sees it, behind NAT) or an address."""
    node = running.lab.nodes.get(ref)
    if node is None:
        return ref
    for t in running.lab.tunnels_of(ref):
        own = t.side(ref)[0]
        return str(own.public_address if seen_from_peer else own.address)
    return str(node.interfaces[0].address.ip)


@fault_kind(
    "block",
    "drop ike|esp|all between two addresses (or gateways), both ways or one",
    revert=_nft_revert,
)
def _block(
    running: RunningLab, fault_id: int, a: str, b: str, what: str = "all", both_ways: bool = True
) -> tuple[str, dict]:
    if what not in MATCH:
        raise LabError(f"block what={what!r}: choose one of {', '.join(MATCH)}")
    # The rule sits on a's node: a's own address, and b as it appears there (after NAT).
    src, dst = _address_of(running, a), _address_of(running, b, seen_from_peer=True)
    node = _node_of(running, src)
    rules = [
        f"ip saddr {src} ip daddr {dst} {m} counter drop".replace("  ", " ") for m in MATCH[what]
    ]
    chains = {"out": _output(rules)}
    if both_ways:
        chains["in"] = _prerouting(
            [
                f"ip saddr {dst} ip daddr {src} {m} counter drop".replace("  ", " ")
                for m in MATCH[what]
            ]
        )
    _nft_add(running, node, fault_id, chains)
    arrow = "<->" if both_ways else "->"
    return f"{what} dropped {src} {arrow} {dst} (nftables on {node})", {"nodes": [node]}


def has_netem(running: RunningLab, node: str) -> bool:
    """Whether the node's kernel has the netem qdisc (this project's CI kernel has not)."""
    probe = ["tc", "qdisc", "add", "dev", "lo", "root", "netem", "loss", "0%"]
    if running.runtime.run(node, probe, check=False).returncode != 0:
        return False
    running.runtime.run(node, ["tc", "qdisc", "del", "dev", "lo", "root"], check=False)
    return True


def _loss_revert(running: RunningLab, fault: Fault) -> None:
    _nft_revert(running, fault)
    if fault.undo.get("netem"):
        running.runtime.run(
            fault.params["node"],
            ["tc", "qdisc", "del", "dev", fault.params["interface"], "root"],
            check=False,
        )


@fault_kind(
    "loss", "drop a random PERCENT of packets through a node's interface", revert=_loss_revert
)
def _loss(
    running: RunningLab, fault_id: int, node: str, interface: str, percent: int
) -> tuple[str, dict]:
    _check_interface(running, node, interface)
    if not 0 < int(percent) <= 100:
        raise LabError(f"loss percent={percent}: must be 1..100")
    rule = f"numgen random mod 100 < {int(percent)} counter drop"
    chains = {"in": _prerouting([f'iifname "{interface}" {rule}'])}
    # Outgoing loss from netem where the kernel has it; nftables numgen otherwise (as on
    # this project's CI kernel). Incoming loss is nftables either way (netem shapes egress).
    netem = has_netem(running, node)
    if netem:
        running.runtime.run(
            node,
            ["tc", "qdisc", "add", "dev", interface, "root", "netem", "loss", f"{int(percent)}%"],
        )
    else:
        chains["out"] = _postrouting([f'oifname "{interface}" {rule}'])
    _nft_add(running, node, fault_id, chains)
    how = "netem out, nftables in" if netem else "nftables numgen"
    return (
        f"{percent}% random loss on {node}:{interface} ({how})",
        {"nodes": [node], "netem": netem},
    )


@fault_kind(
    "partition", "cut a node off: every packet on every interface dropped", revert=_nft_revert
)
def _partition(running: RunningLab, fault_id: int, node: str) -> tuple[str, dict]:
    ifaces = [i.name for i in running.lab.nodes[node].interfaces]
    names = "{ " + ", ".join(f'"{i}"' for i in ifaces) + " }"
    _nft_add(
        running,
        node,
        fault_id,
        {
            "in": _prerouting([f"iifname {names} counter drop"]),
            "out": _postrouting([f"oifname {names} counter drop"]),
        },
    )
    return f"{node} partitioned ({', '.join(ifaces)})", {"nodes": [node]}


def _check_interface(running: RunningLab, node: str, interface: str) -> None:
    if node not in running.lab.nodes:
        raise LabError(f"no node {node!r} in lab {running.name}")
    names = [i.name for i in running.lab.nodes[node].interfaces]
    if interface not in names:
        raise LabError(f"{node} has no interface {interface!r}; it has {', '.join(names)}")


# --- links ---------------------------------------------------------------------------------


def _link_up(running: RunningLab, fault: Fault) -> None:
    running.runtime.run(
        fault.params["node"], ["ip", "link", "set", fault.params["interface"], "up"]
    )


@fault_kind("link-down", "take a node's interface down", revert=_link_up)
def _link_down(running: RunningLab, fault_id: int, node: str, interface: str) -> tuple[str, dict]:
    _check_interface(running, node, interface)
    running.runtime.run(node, ["ip", "link", "set", interface, "down"])
    return f"{node}:{interface} down", {}


# --- daemons -------------------------------------------------------------------------------


def _restart(running: RunningLab, fault: Fault) -> None:
    restart_daemon(running, fault.params["node"], fault.params["daemon"])


@fault_kind(
    "kill", "SIGKILL a daemon (charon, bgpd, zebra, staticd); clearing restarts it", revert=_restart
)
def _kill(running: RunningLab, fault_id: int, node: str, daemon: str) -> tuple[str, dict]:
    pids = daemon_pids(running, node, daemon)
    if not pids:
        raise LabError(f"no {daemon} running on {node}")
    running.runtime.kill(node, pids)
    wait_until(
        lambda: daemon_pids(running, node, daemon),
        lambda p: not p,
        timeout=5,
        interval=0.02,
        what=f"{daemon} on {node} to die",
    )
    return f"{daemon} on {node} killed (SIGKILL, pid {', '.join(map(str, pids))})", {}


def daemon_pids(running: RunningLab, node: str, daemon: str) -> list[int]:
    return [pid for pid, comm in running.runtime.processes(node).items() if comm == daemon]


# --- SAs -------------------------------------------------------------------------------------


def _initiate(running: RunningLab, fault: Fault) -> None:
    tunnel = running.lab.tunnels[fault.params["tunnel"]]
    initiator = tunnel.customer.node
    for child in tunnel.child_sas(initiator):
        running.charon(initiator).initiate(child.name)


@fault_kind(
    "terminate",
    "delete a tunnel's IKE SA (what=ike) or CHILD_SAs (what=child) "
    "via vici; clearing initiates them again",
    revert=_initiate,
)
def _terminate(
    running: RunningLab, fault_id: int, tunnel: str, node: str | None = None, what: str = "ike"
) -> tuple[str, dict]:
    if tunnel not in running.lab.tunnels:
        raise LabError(f"no tunnel {tunnel!r}; tunnels: {', '.join(running.lab.tunnels)}")
    t = running.lab.tunnels[tunnel]
    node = node or t.provider.node
    charon = running.charon(node)
    if what == "ike":
        charon.terminate(ike=tunnel)
    elif what == "child":
        sa = charon.ike_sas().get(tunnel, {})
        for child in sa.get("child-sas", {}).values():
            charon.terminate(child=child["name"])
    else:
        raise LabError(f"terminate what={what!r}: choose ike or child")
    return f"{what} SA of {tunnel} terminated on {node}", {}
