"""Why a tunnel is down, in one line, from what the daemons themselves logged and hold.

Each cause is one function that reads one tunnel's evidence (charon's log lines for its
IKE SAs on both gateways, and both gateways' vici list-conns) and returns a Diagnosis or
None. The resolved lab only says which node is the provider and which the customer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Literal

from lab.core.parallel import by_key
from lab.observe.convergence import tunnel_problems
from lab.session.handle import RunningLab
from lab.topology.proposals import logged_keywords

# "2026-11-22T02:56:07 15[CFG] <tunnel2|2> msg"; responders log "<2>" until a config is found.
_LINE = re.compile(
    r"^\S+ \d+\[(?P<group>\w+)\] (?:<(?:(?P<name>[^|>]*)\|)?(?P<uid>\d+)> )?"
    r"(?P<msg>.*)$"
)
_RECEIVED_FROM = re.compile(r"received packet: from ([\d.]+)\[\d+\] to ([\d.]+)\[")
_SENT_TO = re.compile(r"sending packet: from [\d.]+\[\d+\] to ([\d.]+)\[")
_PROPOSAL_REFUSED = re.compile(r"proposals unacceptable|no (acceptable |matching )?proposal found")


@dataclass(frozen=True)
class LogLine:
    node: str
    uid: int | None  # charon's IKE SA unique id on that node
    name: str | None  # connection name, once charon has picked one
    msg: str
    raw: str


@dataclass(frozen=True)
class Diagnosis:
    tunnel: str
    cause: str
    message: str  # one line, starting with the tunnel name
    evidence: tuple[str, ...] = ()  # the daemons' own lines it rests on
    severity: Literal["error", "warning"] = "error"
    # Waiting will not change it (the two sides' settings disagree): a bring-up stops here.
    definitive: bool = False

    def __str__(self) -> str:
        return self.message


@dataclass
class TunnelEvidence:
    """One tunnel as the daemons see it: its log lines and its vici config, per gateway."""

    name: str
    provider: str
    customer: str
    lines: dict[str, list[LogLine]] = field(default_factory=dict)
    conns: dict[str, dict] = field(default_factory=dict)
    up: bool = False
    # node -> the address its peer must send to, when that is not its own (it is behind a
    # NAT): from the resolved lab, as vici's local_addrs only holds the node's own address.
    public: dict[str, str] = field(default_factory=dict)

    def who(self, node: str) -> str:
        return f"{'provider' if node == self.provider else 'customer'} {node}"

    def peer(self, node: str) -> str:
        return self.customer if node == self.provider else self.provider

    def find_all(self, pattern: str, node: str | None = None) -> list[LogLine]:
        """Lines (on ``node``, or on either gateway) whose message matches ``pattern``."""
        return [
            ln
            for n in ((node,) if node else (self.provider, self.customer))
            for ln in self.lines.get(n, [])
            if re.search(pattern, ln.msg)
        ]

    def find(self, pattern: str, node: str | None = None) -> LogLine | None:
        hits = self.find_all(pattern, node)
        return hits[-1] if hits else None

    def same_sa(self, line: LogLine) -> list[LogLine]:
        return [ln for ln in self.lines.get(line.node, []) if ln.uid == line.uid]

    def vici(self, node: str, key: str, value: object) -> LogLine:
        """A vici list-conns value, quoted as evidence like a log line."""
        return LogLine(node, None, self.name, "", f"vici list-conns {self.name}: {key}={value}")


Finding = tuple[str, list[LogLine]]  # message after "tunnel: ", evidence lines
Check = Callable[[TunnelEvidence], Diagnosis | None]
CAUSES: dict[str, Check] = {}


def cause(
    name: str, *, warning: bool = False, needs_down: bool = True, definitive: bool = False
) -> Callable[[Callable[[TunnelEvidence], Finding | None]], Check]:
    """Register a cause; ``needs_down``: only consulted for a tunnel that is not up, so old
    log lines never blame a tunnel that works now; ``definitive``: the settings of the two
    sides disagree, so no amount of waiting brings the tunnel up."""

    def register(fn: Callable[[TunnelEvidence], Finding | None]) -> Check:
        if name in CAUSES:
            raise ValueError(f"cause {name!r} registered twice; known: {', '.join(CAUSES)}")

        @wraps(fn)
        def check(t: TunnelEvidence) -> Diagnosis | None:
            found = None if (needs_down and t.up) else fn(t)
            if found is None:
                return None
            text, lines = found
            return Diagnosis(
                t.name,
                name,
                f"{t.name}: {text}",
                tuple(f"{ln.node}: {ln.raw}" for ln in lines),
                "warning" if warning else "error",
                definitive,
            )

        CAUSES[name] = check
        return check

    return register


# reading the daemons -------------------------------------------------------------------------
def parse_log(node: str, text: str) -> list[LogLine]:
    """charon's log since its last start, one LogLine per line it could read."""
    lines = text.splitlines()
    starts = [i for i, raw in enumerate(lines) if "Starting IKE charon daemon" in raw]
    out = []
    for raw in lines[starts[-1] if starts else 0 :]:
        m = _LINE.match(raw)
        if m:
            uid = int(m["uid"]) if m["uid"] else None
            out.append(LogLine(node, uid, m["name"] or None, m["msg"], raw))
    return out


def tunnel_lines(lines: list[LogLine], tunnel: str, conn: dict | None) -> list[LogLine]:
    """The lines of every IKE SA that is this tunnel's: named so, or (a responder that found
    no config yet) exchanged with this tunnel's addresses as vici lists them."""
    pairs = {
        (loc, rem)
        for loc in (conn or {}).get("local_addrs", [])
        for rem in (conn or {}).get("remote_addrs", [])
    }
    mine: set[int] = set()
    for ln in lines:
        if ln.uid is None:
            continue
        m = _RECEIVED_FROM.search(ln.msg)
        if ln.name == tunnel or (m and (m[2], m[1]) in pairs):
            mine.add(ln.uid)
    return [ln for ln in lines if ln.uid in mine and ln.name in (None, tunnel)]


# the causes ----------------------------------------------------------------------------------
def _proposal_mismatch(t: TunnelEvidence, kind: str) -> Finding | None:
    for refused in reversed(t.find_all(_PROPOSAL_REFUSED.pattern)):
        sa = t.same_sa(refused)
        offered = [ln for ln in sa if ln.msg.startswith(f"received proposals: {kind}:")]
        accepted = [ln for ln in sa if ln.msg.startswith(f"configured proposals: {kind}:")]
        if offered and accepted:
            break
    else:
        return None
    node, peer = refused.node, t.peer(refused.node)
    notify = t.find("NO_PROPOSAL_CHOSEN", peer)
    text = (
        f"{kind} proposal mismatch: {t.who(peer)} offers "
        f"{logged_keywords(offered[-1].msg.split(': ', 1)[1])}, {t.who(node)} accepts "
        f"{logged_keywords(accepted[-1].msg.split(': ', 1)[1])}"
    )
    return text, [offered[-1], accepted[-1], refused] + ([notify] if notify else [])


@cause("ike-proposal-mismatch", definitive=True)
def ike_proposal_mismatch(t: TunnelEvidence) -> Finding | None:
    return _proposal_mismatch(t, "IKE")


@cause("esp-proposal-mismatch", definitive=True)
def esp_proposal_mismatch(t: TunnelEvidence) -> Finding | None:
    return _proposal_mismatch(t, "ESP")


@cause("psk-mismatch", definitive=True)
def psk_mismatch(t: TunnelEvidence) -> Finding | None:
    # IKEv2: the AUTH payload's MAC does not verify. IKEv1 main mode: the keys derive from
    # the PSK, so the peer's encrypted ID payload does not even decrypt.
    bad = t.find(r"MAC mismatched|invalid ID_V1 payload length") or t.find(r"decryption failed")
    if bad is None:
        return None
    told = t.find(r"AUTHENTICATION_FAILED", t.peer(bad.node))
    how = "MAC mismatched" if "MAC" in bad.msg else "its encrypted message did not decrypt"
    text = (
        f"pre-shared key mismatch: {t.who(bad.node)} rejects {t.who(t.peer(bad.node))}'s "
        f"authentication ({how}): the two sides hold different keys"
    )
    return text, [bad] + ([told] if told else [])


@cause("traffic-selector-mismatch", definitive=True)
def traffic_selector_mismatch(t: TunnelEvidence) -> Finding | None:
    refused = t.find(
        r"traffic selectors .+ === .+ unacceptable|"
        r"no matching CHILD_SA config found for .+ === "
    )
    if refused is None:
        return None
    a, b = re.search(r"(?:selectors|for) (.+) === (.+?)(?: unacceptable)?$", refused.msg).groups()
    # IKEv2 logs the responder's view (its TSr === TSi), IKEv1 the initiator's (TSi === TSr).
    offered = f"{b} === {a}" if refused.msg.endswith("unacceptable") else f"{a} === {b}"
    children = (t.conns.get(refused.node) or {}).get("children", {}).values()
    accepts = (
        "; ".join(
            f"{' '.join(c.get('remote-ts', []))} === {' '.join(c.get('local-ts', []))}"
            for c in children
        )
        or "(no CHILD_SA config)"
    )
    told = t.find(r"TS_UNACCEPTABLE|INVALID_ID_INFORMATION", t.peer(refused.node))
    text = (
        f"traffic selector mismatch: {t.who(t.peer(refused.node))} proposes {offered}, "
        f"{t.who(refused.node)} accepts {accepts}"
    )
    return text, [refused] + ([told] if told else [])


def _unanswered(t: TunnelEvidence) -> tuple[LogLine, str, list[str]] | None:
    """An IKE SA that sent and retransmitted but never received a packet: (the newest
    retransmit line, the address it went to, the addresses the peer's charon listens on)."""
    retry = t.find(r"retransmit")
    if retry is None:
        return None
    sa = t.same_sa(retry)
    sent = [m[1] for ln in sa if (m := _SENT_TO.search(ln.msg))]
    if not sent or any(_RECEIVED_FROM.search(ln.msg) for ln in sa):
        return None
    peer = t.peer(retry.node)
    listens = list((t.conns.get(peer) or {}).get("local_addrs", []))
    if listens and t.public.get(peer) and t.public[peer] not in listens:
        listens.append(t.public[peer])  # its NAT's address reaches it too
    return retry, sent[-1], listens


@cause("wrong-peer-address", definitive=True)
def wrong_peer_address(t: TunnelEvidence) -> Finding | None:
    found = _unanswered(t)
    if found is None or not found[2] or found[1] in found[2]:
        return None
    retry, address, listens = found
    peer = t.peer(retry.node)
    sent = t.find(rf"sending packet: .* to {re.escape(address)}\[", retry.node)
    return (
        f"wrong peer address: {t.who(retry.node)} sends IKE to {address}, which never "
        f"answers; {t.who(peer)} is at {', '.join(listens)}",
        [
            sent or retry,
            retry,
            t.vici(peer, "local_addrs", ",".join(t.conns[peer].get("local_addrs", []))),
        ],
    )


@cause("peer-not-answering")
def peer_not_answering(t: TunnelEvidence) -> Finding | None:
    found = _unanswered(t)
    if found is None or (found[2] and found[1] not in found[2]):
        return None
    retry, address, _ = found
    return (
        f"no answer from {t.who(t.peer(retry.node))} at {address}: its charon is not "
        f"running or not reachable on UDP 500",
        [retry],
    )


@cause("ike-version-mismatch", definitive=True)
def ike_version_mismatch(t: TunnelEvidence) -> Finding | None:
    refused = t.find(r"no IKE config found for")
    if refused is None:
        return None
    request = next(
        (
            ln
            for ln in t.same_sa(refused)
            if re.match(r"parsed (IKE_SA_INIT|ID_PROT|AGGRESSIVE) request", ln.msg)
        ),
        None,
    )
    has = (t.conns.get(refused.node) or {}).get("version", "")
    if request is None or has not in ("IKEv1", "IKEv2"):
        return None
    sent = "IKEv2" if "IKE_SA_INIT" in request.msg else "IKEv1"
    if sent == has:
        return None
    mode = {"ID_PROT": " (Main Mode)", "AGGRESSIVE": " (Aggressive Mode)"}.get(
        request.msg.split()[1], ""
    )
    peer = t.peer(refused.node)
    started = t.find(r"^initiating .*IKE_SA", peer)
    return (
        f"IKE version mismatch: {t.who(peer)} sends {sent}{mode}, "
        f"{t.who(refused.node)} is configured for {has} only",
        [ln for ln in (started, request, refused) if ln] + [t.vici(refused.node, "version", has)],
    )


@cause("dpd-off-one-side", warning=True, needs_down=False)
def dpd_off_one_side(t: TunnelEvidence) -> Finding | None:
    if not (t.conns.get(t.provider) and t.conns.get(t.customer)):
        return None
    # vici list-conns leaves dpd_delay out when it is 0 (DPD off).
    delay = {n: int(t.conns[n].get("dpd_delay", 0)) for n in (t.provider, t.customer)}
    off = [n for n, d in delay.items() if d == 0]
    if len(off) != 1:
        return None
    on = t.peer(off[0])
    return (
        f"DPD off on one side: {t.who(off[0])} has dpd_delay 0 (off), {t.who(on)} probes "
        f"every {delay[on]}s; {off[0]} will not notice a dead peer",
        [
            t.vici(off[0], "dpd_delay", t.conns[off[0]].get("dpd_delay", "(absent: 0)")),
            t.vici(on, "dpd_delay", delay[on]),
        ],
    )


# entry point ---------------------------------------------------------------------------------
def _log_lines(running: RunningLab, node: str) -> list[LogLine]:
    try:
        return parse_log(node, running.charon(node).log_text())
    except FileNotFoundError:
        return []


def evidence(running: RunningLab, down: set[str] | None = None) -> list[TunnelEvidence]:
    """Each tunnel's evidence; ``down``: the tunnels known not to be up (else read)."""
    if down is None:
        down = {p.tunnel for p in tunnel_problems(running) if p.tunnel}
    nodes = sorted(
        {n for t in running.lab.tunnels.values() for n in (t.provider.node, t.customer.node)}
    )
    conns = by_key(lambda n: running.charon(n).list_conns(), nodes)
    logs = by_key(lambda n: _log_lines(running, n), nodes)
    out = []
    for t in running.lab.tunnels.values():
        ev = TunnelEvidence(
            t.name,
            t.provider.node,
            t.customer.node,
            up=t.name not in down,
            public={
                ep.node: str(ep.public_address)
                for ep in (t.provider, t.customer)
                if ep.public_address != ep.address
            },
        )
        for n in (t.provider.node, t.customer.node):
            ev.conns[n] = conns[n].get(t.name, {})
            ev.lines[n] = tunnel_lines(logs[n], t.name, ev.conns[n])
        out.append(ev)
    return out


def diagnose_tunnel(t: TunnelEvidence) -> list[Diagnosis]:
    found = []
    for name, check in CAUSES.items():
        try:
            d = check(t)
        except Exception as exc:  # a broken check must not hide the others or the status
            d = Diagnosis(
                t.name, name, f"{t.name}: (check {name} failed: {exc!r})", severity="warning"
            )
        if d is not None:
            found.append(d)
    return found


def diagnose(running: RunningLab, down: set[str] | None = None) -> list[Diagnosis]:
    """Every cause found, per tunnel, in the lab's tunnel order."""
    return [d for t in evidence(running, down) for d in diagnose_tunnel(t)]
