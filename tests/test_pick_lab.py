"""A command without a lab name, with several labs up: it lists them and says what to type."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from lab.cli import main
from lab.session import state


@pytest.fixture
def two_labs(tmp_path, monkeypatch):
    for name in ("lab-a", "lab-b"):
        (tmp_path / name).mkdir()
    monkeypatch.setattr(state, "STATE_ROOT", tmp_path)


@pytest.mark.parametrize(
    ("argv", "typed"),
    [
        (["status"], "vpnlab status --lab lab-a"),
        (["report", "out"], "vpnlab report --lab lab-b"),
        (["down"], "vpnlab down lab-a"),  # down takes the name as its argument
    ],
)
def test_several_labs_are_listed_with_the_command_to_type(two_labs, argv, typed):
    result = CliRunner().invoke(main, argv, prog_name="vpnlab")
    assert result.exit_code != 0
    assert "2 labs are running; say which one:" in result.output
    assert typed in result.output
