"""What a trainee does: start an exercise (the broken lab comes up), ask for hints, check
their fix against the live lab, reset the break, or (instructors, tests) apply the
reference solution. Each function is one command of ``vpnlab exercise``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from lab.core.errors import LabError
from lab.core.results import CheckResult
from lab.core.waits import wait_until
from lab.ops import bringup, faults
from lab.session.handle import RunningLab
from lab.training import customer, trainee
from lab.training.checks import evaluate
from lab.training.exercise import Exercise, load
from lab.training.trainee import TraineeState

CHECK_WAIT = 20.0  # seconds `check` lets a fix take effect (a reload, DPD, a BGP session)
INITIATED_WITHIN = 10.0  # the customer's gateway has begun to connect after its config loads
Progress = Callable[[str, float], None]


def _quiet(phase: str, seconds: float) -> None:
    pass


@dataclass(frozen=True)
class Current:
    """A trainee's exercise and its running lab."""

    state: TraineeState
    exercise: Exercise
    running: RunningLab


def current(name: str) -> Current:
    state = trainee.read(name)
    try:
        running = RunningLab.attach(state.lab)
    except LabError:
        raise LabError(
            f"{name}'s lab {state.lab} ({state.exercise}) is gone: "
            f"vpnlab exercise start {state.exercise} --as {name}"
        ) from None
    return Current(state, load(state.folder), running)


def start(ref: str, name: str, runtime: str = "auto", progress: Progress = _quiet) -> Current:
    """Bring the exercise's broken lab up for trainee ``name`` (their earlier exercise, if
    any, is taken down first). Nothing starts if the exercise or the name is invalid."""
    from lab.runtime import choose as choose_runtime

    trainee.check_name(name)
    ex = load(ref)
    stop(name, missing_ok=True)
    lab_name = trainee.lab_name(ex.name, name)
    kind, _why = choose_runtime(runtime if runtime != "auto" else ex.lab.runtime)
    broken_dir = trainee.directory(name) / "broken"
    supplied = {}
    for file, text in ex.files["broken"].items():
        trainee.write(broken_dir / file, text)
        supplied[file] = str(broken_dir / file)
    node = ex.lab.nodes[ex.customer].model_copy(update={"supplied": supplied})
    lab = ex.lab.renamed(lab_name).model_copy(update={"nodes": {**ex.lab.nodes, ex.customer: node}})

    running = bringup.prepare(lab, kind)
    try:
        for phase, run in bringup.phases(running):
            t0 = time.monotonic()
            running.record(phase=phase)
            run(running)
            if phase == "configure nodes" and ex.firewall:
                # The customer's firewall is in place before its gateway sends a packet.
                _firewall(running, ex, broken=True)
            progress(phase, time.monotonic() - t0)
        for fault in ex.faults:
            faults.inject(running, fault.kind, **fault.params)
        running.record(phase="exercise")
        _wait_initiated(running, ex)
        bringup.start_recorder(running)
    except BaseException:
        running.down()
        raise
    trainee.save(trainee.new_state(name, ex.name, ex.folder, lab_name, kind))
    return Current(trainee.read(name), ex, running)


def _wait_initiated(running: RunningLab, ex: Exercise) -> None:
    """The customer's charon has logged something about every tunnel (it initiated them),
    so status and check show the break, not a lab still starting. Its log, not its IKE
    SAs: a peer's NO_PROPOSAL_CHOSEN ends an IKE SA at once, for good."""
    tunnels = [t.name for t in running.lab.tunnels.values() if t.customer.node == ex.customer]
    wait_until(
        lambda: {t for t in tunnels if f"<{t}|" not in running.charon(ex.customer).log_text()},
        lambda missing: not missing,
        timeout=INITIATED_WITHIN,
        interval=0.05,
        what=f"{ex.customer} to initiate {', '.join(tunnels)}",
    )


def _firewall(running: RunningLab, ex: Exercise, *, broken: bool) -> None:
    family, table, bad, fixed = ex.firewall
    customer.set_firewall(running, ex.customer, family, table, bad if broken else fixed)


def hint(name: str) -> tuple[int, int, str | None]:
    """The next hint: (its number, how many there are, its text); None once all are shown."""
    with trainee.changing(name) as state:
        hints = load(state.folder).hints
        if state.hints_shown >= len(hints):
            return len(hints), len(hints), None
        state.hints_shown += 1
        return state.hints_shown, len(hints), hints[state.hints_shown - 1]


def check(name: str, wait: float = CHECK_WAIT) -> list[CheckResult]:
    """The exercise's checks on the trainee's live lab."""
    c = current(name)
    return evaluate(c.running, c.exercise.checks, wait)


def _apply(c: Current, which: str) -> None:
    """Put the customer's files (broken or fixed) in place the engineer's way, and restart
    its tunnels so the change takes effect at once."""
    ex, running = c.exercise, c.running
    customer.install(running, ex.customer, ex.files[which])
    if ex.firewall:
        _firewall(running, ex, broken=which == "broken")
    tunnels = [t.name for t in running.lab.tunnels.values() if t.customer.node == ex.customer]
    customer.restart_tunnels(running, ex.customer, tunnels)


def reset(name: str) -> Current:
    """Put the break back: the broken files reloaded, the firewall and faults re-applied."""
    c = current(name)
    faults.clear(c.running)
    _apply(c, "broken")
    for fault in c.exercise.faults:
        faults.inject(c.running, fault.kind, **fault.params)
    return c


def solution(name: str) -> Current:
    """The reference fix, applied as a trainee would: the corrected files written in the
    node and reloaded, the firewall corrected, the faults cleared."""
    c = current(name)
    faults.clear(c.running)
    _apply(c, "fixed")
    return c


def stop(name: str, *, missing_ok: bool = False) -> str | None:
    """Take the trainee's lab down and forget their exercise; the lab's name."""
    try:
        state = trainee.read(name)
    except LabError:
        if missing_ok:
            return None
        raise
    try:
        RunningLab.attach(state.lab).down()
    except LabError:
        from lab.session import cleanup

        cleanup.destroy_lab(state.lab)
    trainee.forget(name)
    return state.lab


def workflow(c: Current) -> str:
    """How this trainee reaches their customer's gateway: the commands, with the lab's paths."""
    running, node = c.running, c.exercise.customer
    lab = running.name
    d = running.runtime.node_dir(node)
    ex = f"vpnlab exec --lab {lab} {node} --"
    lines = [
        f"Your side is the customer's gateway {node}, in lab {lab} ({running.runtime.kind}).",
        f"  look:    vpnlab status --lab {lab}",
        f"           {ex} {' '.join(customer.swanctl(running, node, '--list-sas'))}",
        f"  edit:    {d}/swanctl.conf (strongSwan: connections and keys), e.g.",
        f"           {ex} sed -i 's/OLD/NEW/' {d}/swanctl.conf",
        f"  reload:  {ex} {' '.join(customer.swanctl(running, node, '--load-all', '--file', f'{d}/swanctl.conf'))}",  # noqa: E501
        f"           {ex} {' '.join(customer.swanctl(running, node, '--terminate', '--ike', 'TUNNEL'))}",  # noqa: E501
        f"           {ex} {' '.join(customer.swanctl(running, node, '--initiate', '--child', 'TUNNEL'))}",  # noqa: E501
    ]
    if "frr.conf" in c.exercise.files["fixed"]:
        vty = " ".join(customer.vtysh(running, node))
        lines += [
            f"  BGP:     {d}/frr.conf; {ex} {vty} -c 'show bgp summary'",
            f"           {ex} {vty} -c 'configure terminal' -c 'router bgp ASN' -c '...'",
        ]
    if c.exercise.firewall:
        family, table = c.exercise.firewall[:2]
        lines.append(
            f"  firewall: {ex} nft list table {family} {table}"
            f"   (file: {d}/{customer.FIREWALL_FILE})"
        )
    who = c.state.trainee
    lines += [
        f"  then:    vpnlab exercise check --as {who}   (hint: vpnlab exercise hint --as {who})",
        "Your edits stay until 'vpnlab exercise reset' puts the break back.",
    ]
    return "\n".join(lines)
