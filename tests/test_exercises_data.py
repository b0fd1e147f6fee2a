"""Exercises are data: every shipped one is valid, a malformed folder gets one error naming
file and field (exit 2, nothing started), hints come in order, trainees keep their place.

No daemons here: the break/fix/reset loop on real ones is scenarios/test_exercises.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from lab.cli import main
from lab.core import paths
from lab.core.errors import InputError, LabError
from lab.core.shipped import EXERCISES, shipped
from lab.ops.transfer import Transfer
from lab.training import trainee, trainer
from lab.training.checks import CHECKS, parse_checks
from lab.training.exercise import ENV, all_exercises, folders, load

SHIPPED = sorted(p.parent.name for p in shipped(EXERCISES).glob("*/exercise.yaml"))
# The support cases the shipped set must cover (issue 11), by exercise name.
CASES = {
    "psk-mismatch",
    "ike-proposal",
    "esp-pfs",
    "selectors",
    "dpd-off",
    "natt-blocked",
    "bgp-no-advertise",
    "ikev2-keepalive",
    "mtu-black-hole",  # the ninth: a PMTU black hole, verified on both runtimes
}


@pytest.fixture
def state_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(paths, "STATE_ROOT", tmp_path / "state")
    monkeypatch.setattr(paths, "WORK_ROOT", tmp_path / "state" / ".work")
    return tmp_path / "state"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of a shipped exercise, to break."""
    dst = tmp_path / "mine" / "my-exercise"
    shutil.copytree(shipped(EXERCISES) / "psk-mismatch", dst)
    return dst


def _edit(folder: Path, change) -> None:
    path = folder / "exercise.yaml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


# --- the shipped exercises -----------------------------------------------------------------


def test_shipped_exercises_cover_the_support_cases():
    assert set(SHIPPED) >= CASES, sorted(CASES - set(SHIPPED))
    assert len(SHIPPED) >= 9


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_exercise_is_valid(name: str):
    ex = load(name)
    assert ex.description and ex.hints and ex.checks
    assert ex.fails_before_fix, "the scenario test needs to know what the break breaks"
    # The break changes something: the customer's files, its firewall, or a fault.
    changed = ex.files["broken"] != ex.files["fixed"]
    assert changed or ex.firewall or ex.faults
    # The complaint is the customer's: it does not give the cause away.
    assert "cause" not in ex.description.lower().split("\n", 1)[0]
    for text in (ex.description, *ex.hints):
        assert "vpnlab-demo-k" not in text, "no key in what a trainee reads"


def test_every_check_kind_is_used_by_some_exercise():
    used = {c.kind for ex in all_exercises() for c in ex.checks}
    assert used == set(CHECKS), sorted(set(CHECKS) - used)


def test_transfer_check_parses_with_defaults():
    lab = load("mtu-black-hole").lab
    (spec,) = parse_checks([{"transfer": {"from": "pc", "to": "app"}}], lab, "x.yaml")
    assert (spec.kind, spec.label, spec.active) == ("transfer", "transfer pc -> app", False)
    assert (spec.params.bytes, spec.params.within) == (1 << 20, 5)
    (spec,) = parse_checks(
        [{"transfer": {"from": "app", "to": "pc", "bytes": 4096, "within": 2, "label": "dl"}}],
        lab,
        "x.yaml",
    )
    assert (spec.label, spec.params.from_, spec.params.bytes, spec.params.within) == (
        "dl", "app", 4096, 2,
    )  # fmt: skip


def test_a_transfer_is_complete_only_when_everything_arrived():
    assert Transfer(10, 10, 10, connected=True, done=True).complete
    assert not Transfer(10, 9, 10, connected=True, done=True).complete
    assert not Transfer(10, 10, 10, connected=True, done=False).complete  # receiver cut off


# --- malformed folders: one error, naming file and field -----------------------------------


def _error(folder: Path) -> InputError:
    with pytest.raises(InputError) as info:
        load(folder)
    return info.value


@pytest.mark.parametrize(
    "change, field, rule",
    [
        (lambda d: d.pop("hints"), "hints", "required field is missing"),
        (lambda d: d.update(hints=[]), "hints", "at least 1"),
        (lambda d: d.update(checks=[{"tunnel_upp": "tunnel1"}]), "checks.0", "unknown check"),
        (lambda d: d.update(checks=[{"tunnel_up": "tunnel9"}]), "checks.0.tunnel_up.tunnel",
         "no tunnel 'tunnel9'"),
        (lambda d: d.update(checks=[{"ping": {"from": "pc", "to": "nowhere"}}]),
         "checks.0.ping.to", "no node 'nowhere'"),
        (lambda d: d.update(checks=[{"ping": {"from": "pc"}}]), "checks.0.ping.to",
         "required field is missing"),
        (lambda d: d.update(checks=[{"proposal": {"tunnel": "tunnel1", "ike": "aes999-sha1"}}]),
         "checks.0.proposal", "unknown algorithm"),
        (lambda d: d.update(checks=[{"transfer": {"from": "pc", "to": "nowhere"}}]),
         "checks.0.transfer.to", "no node 'nowhere'"),
        (lambda d: d.update(checks=[{"transfer": {"from": "pc", "to": "app", "bytes": 0}}]),
         "checks.0.transfer.bytes", "greater than or equal to 1"),
        (lambda d: d.update(checks=[{"transfer": {"from": "pc", "to": "app", "within": 61}}]),
         "checks.0.transfer.within", "less than or equal to 60"),
        (lambda d: d.update(checks=[{"transfer": "pc"}]), "checks.0.transfer",
         "a mapping of the check's settings"),
        (lambda d: d.update(checks=["tunnel_up tunnel1"]), "checks.0", "one check per item"),
        (lambda d: d.update(checks=[{"tunnel_up": "tunnel1"}, {"tunnel_up": "tunnel1"}]),
         "checks.1", "two checks named"),
        (lambda d: d["break"]["topology"]["tunnels"]["tunnel2"]["customer"].update(
            ike_proposals=["aes999-sha1"]),
         "break.topology: tunnels.tunnel2.customer.ike_proposals", "unknown algorithm"),
        (lambda d: d["break"].update(edits=[{"file": "swanctl.conf", "replace": "nowhere"}]),
         "break.edits.0.replace", "exactly once"),
        (lambda d: d["break"].update(edits=[{"file": "frr.conf", "replace": "x"}]),
         "break.edits.0.file", "runs no frr.conf"),
        (lambda d: d["break"].update(faults=[{"kind": "explode"}]), "break.faults.0.kind",
         "unknown fault"),
        (lambda d: d.update(fails_before_fix=["tunnel_up tunnel3"]), "fails_before_fix.0",
         "no check's label"),
        (lambda d: d.update(topology="no-such-topology"), "topology", "no file"),
        (lambda d: d.update(surprise=1), "surprise", "unknown field"),
    ],
)  # fmt: skip
def test_malformed_exercise_names_file_and_field(folder: Path, change, field: str, rule: str):
    _edit(folder, change)
    err = _error(folder)
    assert (err.file, err.field) == (str(folder / "exercise.yaml"), field), err.message
    assert rule in err.rule, err.message
    assert "\n" not in err.message


def test_malformed_yaml_and_missing_files(folder: Path):
    (folder / "exercise.yaml").write_text("title: [unclosed\n")
    err = _error(folder)
    assert err.field.startswith("line ") and "not valid YAML" in err.rule
    (folder / "exercise.yaml").write_text("- a list\n")
    assert _error(folder).field == "(top level)"


def test_empty_description_is_refused(folder: Path):
    (folder / "description.md").write_text("\n")
    err = _error(folder)
    assert err.file == str(folder / "description.md") and "complaint" in err.rule


def test_bad_folder_name_is_refused(folder: Path):
    bad = folder.parent / "Bad_Name"
    folder.rename(bad)
    assert _error(bad).field == "(folder name)"


def test_firewall_file_needs_one_table(tmp_path: Path):
    dst = tmp_path / "fw"
    shutil.copytree(shipped(EXERCISES) / "natt-blocked", dst)
    (dst / "firewall.nft").write_text("flush ruleset\n")
    err = _error(dst)
    assert err.field == "break.firewall.file" and "exactly one nftables table" in err.rule


def test_cli_validate_exits_2_with_one_line(folder: Path):
    _edit(folder, lambda d: d.update(checks=[{"tunnel_up": "tunnel9"}]))
    result = CliRunner().invoke(main, ["exercise", "validate", str(folder)])
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert "exercise.yaml: checks.0.tunnel_up.tunnel" in line


def test_cli_start_of_a_bad_exercise_starts_nothing(folder: Path, state_root: Path):
    _edit(folder, lambda d: d.update(hints=[]))
    result = CliRunner().invoke(main, ["exercise", "start", str(folder), "--as", "tr-x"])
    assert result.exit_code == 2, result.output
    assert "exercise.yaml: hints" in result.output
    assert not state_root.exists() or not any(state_root.iterdir())
    bad_name = CliRunner().invoke(main, ["exercise", "start", "psk-mismatch", "--as", "Tr X"])
    assert bad_name.exit_code == 2 and "--as" in bad_name.output
    unknown = CliRunner().invoke(main, ["exercise", "start", "no-such-one", "--as", "tr-x"])
    assert unknown.exit_code == 2 and "no exercise 'no-such-one'" in unknown.output
    assert not state_root.exists() or not any(state_root.iterdir())


# --- where exercises are found -----------------------------------------------------------------


def test_user_exercises_come_first_and_need_no_python(folder: Path, monkeypatch):
    """A folder in $VPNLAB_EXERCISES is an exercise; one named like a shipped one wins."""
    own = folder.parent / "psk-mismatch"
    shutil.copytree(folder, own)
    _edit(own, lambda d: d.update(title="my own version"))
    monkeypatch.setenv(ENV, str(folder.parent))
    found = folders()
    assert found["my-exercise"] == folder and found["psk-mismatch"] == own
    assert load("psk-mismatch").title == "my own version"
    result = CliRunner().invoke(main, ["exercise", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert {"my-exercise", *SHIPPED} <= set(rows)
    assert "vpnlab-demo-k" not in result.output  # keys stay in the customer's files


# --- trainees ----------------------------------------------------------------------------------


def test_lab_names_are_short_distinct_and_stable():
    names = {
        trainee.lab_name(ex, who)
        for ex in ("psk-mismatch", "bgp-no-advertise", "a" * 24)
        for who in ("alice", "bob", "tr123456789a")
    }
    assert len(names) == 9
    assert all(len(n) <= 24 and n[0].isalpha() and not n.endswith("-") for n in names)
    assert trainee.lab_name("psk-mismatch", "alice") == "alice-psk-mismatch"
    assert trainee.lab_name("a" * 24, "bob") == trainee.lab_name("a" * 24, "bob")


def test_trainee_names_are_checked():
    assert trainee.check_name("alice") == "alice"
    for bad in ("Alice", "1a", "a" * 13, "a b", ""):
        with pytest.raises(InputError):
            trainee.check_name(bad)


def test_hints_come_in_order_then_stop(state_root: Path):
    ex = load("psk-mismatch")
    trainee.save(trainee.new_state("alice", ex.name, ex.folder, "alice-psk-mismatch", "netns"))
    trainee.save(trainee.new_state("bob", ex.name, ex.folder, "bob-psk-mismatch", "netns"))
    seen = [trainer.hint("alice") for _ in range(len(ex.hints) + 1)]
    assert seen[:-1] == [(i + 1, len(ex.hints), h) for i, h in enumerate(ex.hints)]
    assert seen[-1] == (len(ex.hints), len(ex.hints), None)
    # Each trainee has their own place.
    assert trainer.hint("bob") == (1, len(ex.hints), ex.hints[0])
    assert {t.trainee: t.hints_shown for t in trainee.trainees()} == {
        "alice": len(ex.hints),
        "bob": 1,
    }
    assert (state_root / ".work" / "training" / "alice" / "trainee.json").is_file()


def test_commands_without_an_exercise_say_so(state_root: Path):
    with pytest.raises(LabError, match="on no exercise"):
        trainer.hint("carol")
    result = CliRunner().invoke(main, ["exercise", "check", "--as", "carol"])
    assert result.exit_code == 1 and "exercise start NAME --as carol" in result.output


def test_forgetting_a_trainee_removes_their_files(state_root: Path):
    ex = load("psk-mismatch")
    trainee.save(trainee.new_state("dave", ex.name, ex.folder, "dave-psk-mismatch", "netns"))
    trainee.write(trainee.directory("dave") / "broken" / "swanctl.conf", "secret = x\n")
    trainee.forget("dave")
    assert not trainee.directory("dave").exists()
    assert trainee.trainees() == []
