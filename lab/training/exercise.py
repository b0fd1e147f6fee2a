"""An exercise is a folder of data: what the customer says, the lab, the break, the hints in
order and the checks that decide it is fixed. This module reads and checks one.

    exercises/<name>/
        exercise.yaml     title, topology, break, hints, checks (see README, "Training")
        description.md    the customer's complaint, as the trainee reads it (not the cause)
        <topology>.yaml   the lab as it should be (or the name of a shipped topology)
        <firewall>.nft    optional: the customer's own firewall, when that is the break

The break is applied to the customer's gateway only: its swanctl.conf (and frr.conf) are
rendered from the topology with ``break.topology`` merged in and ``break.edits`` made, and
run as the customer's own files; the provider runs the topology as written. The fixed
files are rendered from the topology alone: they are the reference solution.
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from lab.core.errors import InputError
from lab.core.shipped import EXERCISES, find_topology, shipped
from lab.render import render_node
from lab.topology import load_lab
from lab.topology.model import Lab
from lab.topology.resolve import resolve
from lab.topology.schema import PATTERN_RULES as TOPOLOGY_RULES
from lab.topology.schema import Strict, Topology
from lab.topology.yamlfile import load_yaml, read_text, validate
from lab.training.checks import CHECKS, CheckSpec, parse_checks

EXERCISE_FILE, DESCRIPTION_FILE = "exercise.yaml", "description.md"
EXERCISE_NAME = r"^[a-z][a-z0-9-]{0,23}$"
PATTERN_RULES = {
    EXERCISE_NAME: "exercise names are lowercase letters, digits and '-', start with a "
    "letter, at most 24 characters",
}
ENV = "VPNLAB_EXERCISES"  # user exercise directories, searched before the shipped ones
CUSTOMER_FILES = ("swanctl.conf", "frr.conf")
_TABLE = re.compile(r"^\s*table\s+(inet|ip|ip6|arp|bridge|netdev)\s+([A-Za-z0-9_-]+)\s*\{", re.M)


class Edit(Strict):
    """Text replaced in one of the customer's rendered files: for a break the topology
    cannot express (a BGP network statement left out)."""

    file: Literal["swanctl.conf", "frr.conf"]
    replace: Annotated[str, StringConstraints(min_length=1)]
    by: str = Field("", description="the text put in its place (default: removed)")


class Firewall(Strict):
    """The customer's own nftables table (one ``table FAMILY NAME`` in the file)."""

    file: str = Field(description="nftables file in the exercise folder: the broken firewall")
    fixed: str | None = Field(None, description="the corrected file; default: table deleted")


class FaultSpec(Strict):
    kind: str
    params: dict[str, str | int | bool] = {}


class Break(Strict):
    topology: dict = Field(
        {}, description="a partial topology merged into the lab for the customer's files"
    )
    edits: list[Edit] = []
    firewall: Firewall | None = None
    faults: list[FaultSpec] = []


class ExerciseFile(Strict):
    title: Annotated[str, StringConstraints(min_length=1)]
    topology: str = Field(description="topology file in the folder, or a shipped topology name")
    customer: str | None = Field(None, description="the gateway the trainee fixes (derived)")
    break_: Break = Field(alias="break")
    hints: list[Annotated[str, StringConstraints(min_length=1)]] = Field(min_length=1)
    checks: list[dict | str] = Field(min_length=1)
    fails_before_fix: list[str] = Field(
        [], description="labels of the checks the break makes fail (the scenario test asserts it)"
    )


@dataclass(frozen=True)
class Exercise:
    name: str
    folder: Path
    title: str
    description: str
    customer: str
    lab: Lab  # as it should be: the provider's side, and the expectations of status
    files: dict[str, dict[str, str]]  # "broken" | "fixed" -> customer file name -> text
    firewall: tuple[str, str, str, str | None] | None  # (family, table, broken, fixed text)
    faults: list[FaultSpec]
    hints: list[str]
    checks: list[CheckSpec]
    fails_before_fix: list[str]

    @property
    def file(self) -> Path:
        return self.folder / EXERCISE_FILE


def search_path() -> list[Path]:
    """Where exercises are looked for: ``VPNLAB_EXERCISES`` directories first, then the
    shipped ones; the first folder of a name wins."""
    extra = [Path(p) for p in os.environ.get(ENV, "").split(os.pathsep) if p]
    return [*extra, shipped(EXERCISES)]


def folders() -> dict[str, Path]:
    """Exercise name -> folder, over the search path."""
    found: dict[str, Path] = {}
    for root in search_path():
        if not root.is_dir():
            continue
        for folder in sorted(root.iterdir()):
            if (folder / EXERCISE_FILE).is_file():
                found.setdefault(folder.name, folder)
    return found


def find(name_or_path: str) -> Path:
    """An exercise folder by name (search path) or by path."""
    path = Path(name_or_path)
    if (path / EXERCISE_FILE).is_file():
        return path
    known = folders()
    if name_or_path in known:
        return known[name_or_path]
    raise InputError(
        "exercise", f"no exercise {name_or_path!r}; known: {', '.join(sorted(known)) or 'none'}"
    )


def load(name_or_path: str | Path) -> Exercise:
    """Read, validate and resolve one exercise folder; an InputError names file and field."""
    folder = find(str(name_or_path))
    file = folder / EXERCISE_FILE
    name = folder.resolve().name
    if not re.match(EXERCISE_NAME, name):
        raise InputError("(folder name)", PATTERN_RULES[EXERCISE_NAME], folder)
    what = "exercise is a YAML mapping (title:, topology:, break:, hints:, checks:)"
    raw = validate(ExerciseFile, load_yaml(read_text(file, "exercise"), str(file), what), str(file))
    description = read_text(folder / DESCRIPTION_FILE, "exercise description").strip()
    if not description:
        raise InputError("(file)", "the customer's complaint is empty", folder / DESCRIPTION_FILE)

    topo_path = _topology_path(folder, raw.topology, file)
    lab = load_lab(topo_path)
    broken = _broken_lab(topo_path, raw.break_.topology, file)
    customer = _customer(lab, raw.customer, file)
    files = {
        "fixed": customer_files(lab, customer),
        "broken": _edited(customer_files(broken, customer), raw.break_.edits, file),
    }
    if set(files["broken"]) != set(files["fixed"]):
        raise InputError("break.topology", "may not change which daemons the customer runs", file)
    checks = parse_checks(raw.checks, lab, str(file))
    labels = [c.label for c in checks]
    for i, label in enumerate(raw.fails_before_fix):
        if label not in labels:
            raise InputError(
                f"fails_before_fix.{i}", f"{label!r} is no check's label; labels: {labels}", file
            )
    for i, fault in enumerate(raw.break_.faults):
        _check_fault(fault, f"break.faults.{i}", file)
    return Exercise(
        name=name,
        folder=folder,
        title=raw.title,
        description=description,
        customer=customer,
        lab=lab,
        files=files,
        firewall=_firewall(folder, raw.break_.firewall, file),
        faults=list(raw.break_.faults),
        hints=list(raw.hints),
        checks=checks,
        fails_before_fix=list(raw.fails_before_fix),
    )


def _topology_path(folder: Path, ref: str, file: Path) -> Path:
    local = folder / ref
    if local.is_file():
        return local
    shipped_one = find_topology(ref)
    if shipped_one.is_file():
        return shipped_one
    raise InputError("topology", f"no file {ref!r} in the folder, nor a shipped topology", file)


def _merge(base: dict, over: dict) -> dict:
    """``over`` merged into ``base`` key by key; a tunnel side given as a node name counts
    as ``{node: NAME}``, so that a break can add settings to it."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        mine = out.get(key)
        if isinstance(value, dict) and isinstance(mine, str):
            mine = {"node": mine}
        out[key] = (
            _merge(mine, value) if isinstance(value, dict) and isinstance(mine, dict) else value
        )
    return out


def _broken_lab(topo_path: Path, override: dict, file: Path) -> Lab:
    """The topology with the break merged in, resolved; errors name the exercise file."""
    text = read_text(topo_path, "topology")
    data = _merge(load_yaml(text, str(topo_path), "topology is a YAML mapping"), override)
    try:
        topo = validate(Topology, data, str(file), TOPOLOGY_RULES)
        return resolve(topo, source=str(topo_path.resolve()))
    except InputError as exc:
        raise InputError(f"break.topology: {exc.field}", exc.rule, file) from None


def _customer(lab: Lab, given: str | None, file: Path) -> str:
    gateways = sorted({t.customer.node for t in lab.tunnels.values()})
    if given is not None:
        if given not in gateways:
            raise InputError("customer", f"{given!r} is no customer gateway; {gateways}", file)
        return given
    if len(gateways) != 1:
        raise InputError("customer", f"name the gateway the trainee fixes: one of {gateways}", file)
    return gateways[0]


def customer_files(lab: Lab, node: str) -> dict[str, str]:
    """The customer gateway's own files, keys included: what it runs and the trainee edits.
    Its BGP goes in frr.conf (loaded through vtysh), as a customer's router would hold it."""
    # As a policy-based customer gateway runs it on either data plane: its tunnels' policies
    # ranked in tunnel order (see Endpoint.policy_rank), so the LAN pair both tunnels share
    # stays bound to tunnel 1, the one the provider also prefers.
    rendered = render_node(lab.on_kernel({node}), lab.nodes[node], Path("/"), reveal_secrets=True)
    files = {"swanctl.conf": rendered["swanctl.conf"]}
    if lab.nodes[node].bgp is not None:
        files["frr.conf"] = rendered["bgpd.conf"]
    return files


def _edited(files: dict[str, str], edits: list[Edit], file: Path) -> dict[str, str]:
    out = dict(files)
    for i, edit in enumerate(edits):
        text = out.get(edit.file)
        if text is None:
            raise InputError(f"break.edits.{i}.file", f"the customer runs no {edit.file}", file)
        if text.count(edit.replace) != 1:
            raise InputError(
                f"break.edits.{i}.replace",
                f"must occur exactly once in the customer's {edit.file} "
                f"(found {text.count(edit.replace)} times)",
                file,
            )
        out[edit.file] = text.replace(edit.replace, edit.by)
    return out


def _firewall(
    folder: Path, fw: Firewall | None, file: Path
) -> tuple[str, str, str, str | None] | None:
    if fw is None:
        return None
    broken = read_text(folder / fw.file, "firewall file")
    tables = _TABLE.findall(broken)
    if len({t for t in tables}) != 1:
        raise InputError(
            "break.firewall.file", f"{fw.file} must define exactly one nftables table", file
        )
    fixed = read_text(folder / fw.fixed, "firewall file") if fw.fixed else None
    if fixed is not None and set(_TABLE.findall(fixed)) != set(tables):
        raise InputError("break.firewall.fixed", f"must define table {tables[0][1]}", file)
    family, table = tables[0]
    return family, table, broken, fixed


def _check_fault(fault: FaultSpec, field: str, file: Path) -> None:
    from lab.ops.faults import FAULTS

    if fault.kind not in FAULTS:
        raise InputError(
            f"{field}.kind",
            f"unknown fault {fault.kind!r}; known: {', '.join(sorted(FAULTS))}",
            file,
        )


def all_exercises() -> list[Exercise]:
    return [load(folder) for folder in folders().values()]


__all__ = ["CHECKS", "Exercise", "all_exercises", "customer_files", "find", "folders", "load"]
