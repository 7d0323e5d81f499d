"""`aisle experiment …` on the embedded store: JSON summaries, exit 2 with one sentence on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aisle.app.cli import app
from aisle.core.settings import get_settings

runner = CliRunner()
GOOD = """key: pop-vs-trending
duration: 1d
variants:
  - {name: popularity, weight: 0.5, strategy: popularity}
  - {name: trending, weight: 0.5, strategy: trending}
overrides: {qa-1: trending}
"""


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AISLE_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()


def last_json(output: str) -> dict[str, object]:
    return json.loads(output.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_create_start_assign_stop(tmp_path: Path) -> None:
    path = tmp_path / "e.yaml"
    path.write_text(GOOD)
    created = runner.invoke(app, ["experiment", "create", str(path)])
    assert created.exit_code == 0, created.output
    assert last_json(created.stdout)["experiment"]["status"] == "draft"  # type: ignore[index]
    assert (tmp_path / "home" / "experiments" / "experiments.db").exists()
    assert runner.invoke(app, ["experiment", "start", "pop-vs-trending"]).exit_code == 0
    forced = last_json(runner.invoke(app, ["experiment", "assign", "pop-vs-trending", "qa-1"]).stdout)
    assert forced["variant"] == "trending" and forced["reason"] == "forced (override)"
    hashed = last_json(runner.invoke(app, ["experiment", "assign", "pop-vs-trending", "u1"]).stdout)
    assert hashed["variant"] in ("popularity", "trending") and hashed["reason"] == "assigned by hash"
    listed = last_json(runner.invoke(app, ["experiment", "list"]).stdout)
    assert [e["status"] for e in listed["experiments"]] == ["running"]  # type: ignore[attr-defined]
    again = runner.invoke(app, ["experiment", "create", str(path)])
    assert again.exit_code == 2 and "stop it first" in again.output and "Traceback" not in again.output
    assert runner.invoke(app, ["experiment", "stop", "pop-vs-trending"]).exit_code == 0
    v2 = last_json(runner.invoke(app, ["experiment", "create", str(path)]).stdout)
    assert v2["experiment"]["version"] == 2  # type: ignore[index]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD.replace("0.5, strategy: trending", "0.6, strategy: trending"), "sum to 1"),
        (GOOD.replace("strategy: trending", "strategy: random"), "strategy"),
        ("key: [unclosed\n", "not valid YAML"),
        (GOOD.replace("strategy: trending", "alias: champion"), "no policy is registered yet"),
    ],
)
def test_bad_definitions_exit_2_with_one_sentence(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = runner.invoke(app, ["experiment", "create", str(path)])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_unknown_keys_exit_2() -> None:
    for args in (
        ["experiment", "start", "nope"],
        ["experiment", "show", "nope"],
        ["experiment", "stop", "nope"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and "nope" in result.output
