"""The CLI's contract: JSON summary on the last stdout line, exit 2 with one sentence on bad input."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aisle.app.cli import app
from aisle.core.settings import get_settings

runner = CliRunner()


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AISLE_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()


def test_generate_writes_files_and_a_json_summary(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "generate", "--users", "50", "--items", "30", "--days", "5"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["job"] == "data.generate" and summary["ok"] is True
    assert summary["users"] == 50 and summary["items"] == 30 and summary["events"] > 0
    assert Path(summary["paths"]["events"]).exists()


@pytest.mark.parametrize(
    "args",
    [
        ["data", "generate", "--users", "-5"],
        ["data", "generate", "--days", "0"],
        ["data", "generate", "--format", "xml", "--users", "5", "--items", "5", "--days", "1"],
        ["data", "generate", "--no-such-option"],
        ["data", "generate", "--users", "many"],
    ],
)
def test_bad_input_exits_2_without_traceback(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_unwritable_home_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    monkeypatch.setenv("AISLE_HOME", str(blocker / "home"))
    get_settings.cache_clear()
    result = runner.invoke(app, ["data", "generate", "--users", "5", "--items", "5", "--days", "1"])
    assert result.exit_code == 2
    assert "not writable" in result.output


def test_every_command_has_help() -> None:
    for args in (["--help"], ["data", "--help"], ["data", "generate", "--help"], ["services", "--help"],
                 ["services", "up", "--help"], ["demo", "--help"]):  # fmt: skip
        result = runner.invoke(app, args)
        assert result.exit_code == 0 and "Usage" in result.output, args


def _every_command(group: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    import typer.main

    command = typer.main.get_command(group) if path == () else group  # type: ignore[arg-type]
    found = [path]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        found += _every_command(sub, (*path, name))
    return found


def test_help_has_no_type_markers_and_no_cut_descriptions() -> None:
    """typer 0.29 would print <bool>, <int>, <list[Path]> after every parameter; rich cuts a
    description it cannot wrap with an ellipsis. Neither may appear in any command's help at 80 columns."""
    import re

    commands = _every_command(app)
    assert ("recommend-batch",) in commands and ("ui",) in commands and ("models", "list") in commands
    for path in commands:
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80", "TERMINAL_WIDTH": "80"})
        assert result.exit_code == 0 and "Usage" in result.output, path
        markers = re.findall(r"<[a-z][a-zA-Z\[\], |]*>", result.output)
        assert not markers, (path, markers)
        assert "…" not in result.output, (path, result.output)
    flag_help = runner.invoke(app, ["recommend-batch", "--help"], env={"COLUMNS": "80"}).output
    assert "user_id, item_id, rank, score" in " ".join(flag_help.split())
    assert "--verbose" in flag_help


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--models", "popularity,magic"], "unknown model(s) magic"),
        (["train", "--epochs", "0"], "epochs must be at least 1"),
        (["evaluate", "--models", "popularity"], "event lake"),  # nothing ingested yet
        (["recommend-batch", "--users", "missing.txt"], "no such file"),
        (["models", "rollback"], "no champion to roll back"),
        (["models", "promote", "7"], "has no version 7"),
        (["search", "build"], "holds no catalog to index"),
        (["search", "build", "--threads", "0"], "--threads must be between 1 and 64"),
        (["search", "query", "  "], "a search needs words"),
    ],
)
def test_model_commands_explain_bad_input(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()) and "Traceback" not in result.output


def test_recommend_batch_without_a_registered_model_says_so(tmp_path: Path) -> None:
    users = tmp_path / "users.txt"
    users.write_text("u1\nu2\n")
    result = runner.invoke(app, ["recommend-batch", "--users", str(users)])
    assert result.exit_code == 2
    assert "run `aisle train` first" in " ".join(result.output.split())
