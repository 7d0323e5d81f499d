"""`aisle ui`: the real MLflow server and the Data Docs site start on free ports against $AISLE_HOME,
answer over HTTP, are found again instead of started twice, and `aisle ui --stop` leaves no process.

Runs the installed `aisle` command in child processes, as a user would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from aisle.app.ui import process_gone

pytestmark = pytest.mark.integration

AISLE = [sys.executable, "-m", "aisle.app.cli"]


def _aisle(home: Path, *args: str, timeout: float = 240) -> tuple[int, dict[str, Any], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AISLE_")}
    env["AISLE_HOME"] = str(home)
    done = subprocess.run(
        [*AISLE, *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )
    lines = done.stdout.strip().splitlines()
    return done.returncode, json.loads(lines[-1]) if lines else {}, done.stderr


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return int(response.status), response.read()


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline:
                found.append(f"{entry.name}: {cmdline[:120]}")
    return found


def test_mlflow_and_data_docs_answer_and_stop_leaves_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    site = home / "gx" / "uncommitted" / "data_docs" / "local_site"
    site.mkdir(parents=True)
    (site / "index.html").write_text("<html><body>Aisle data docs probe</body></html>")

    uis: dict[str, Any] = {}
    try:
        for name in ("mlflow", "docs"):  # `all` would also start Airflow, which its own tests cover
            code, started, stderr = _aisle(home, "ui", name)
            assert code == 0, stderr
            uis[name] = started["uis"][name]
            assert uis[name]["state"] == "started"
            assert uis[name]["url"] in stderr and "login" in stderr  # printed for the person too

        status, body = _get(uis["mlflow"]["url"])
        assert status == 200 and b"<html" in body.lower()
        api = uis["mlflow"]["url"].rstrip("/") + "/ajax-api/2.0/mlflow/experiments/search?max_results=5"
        status, body = _get(api)
        assert status == 200 and "experiments" in json.loads(body)
        assert (home / "mlflow" / "mlflow.db").exists()  # the tracking store of this $AISLE_HOME
        status, body = _get(uis["docs"]["url"])
        assert status == 200 and b"Aisle data docs probe" in body

        # found, not started twice
        code, again, _ = _aisle(home, "ui", "mlflow")
        assert code == 0 and again["uis"]["mlflow"]["state"] == "running"
        assert again["uis"]["mlflow"]["pid"] == uis["mlflow"]["pid"]
    finally:
        code, stopped, stderr = _aisle(home, "ui", "--stop")
    assert code == 0, stderr
    assert stopped["uis"]["mlflow"]["stopped"] and stopped["uis"]["docs"]["stopped"]
    for name in ("mlflow", "docs"):
        assert process_gone(uis[name]["pid"]), name
    port = str(uis["mlflow"]["url"].rsplit(":", 1)[1].strip("/"))
    assert _processes_mentioning(f"--port {port}") == []
    assert _processes_mentioning(str(site)) == []
    assert not (home / "run" / "ui.json").exists()


def test_asking_for_a_ui_that_cannot_open_says_why_and_fails(tmp_path: Path) -> None:
    code, summary, stderr = _aisle(tmp_path / "home", "ui", "docs", timeout=60)
    assert code == 1 and summary["ok"] is False
    assert "no Data Docs" in stderr and "aisle demo" in stderr and "Traceback" not in stderr
    code, _, stderr = _aisle(tmp_path / "home", "ui", "grafana", timeout=60)
    assert code == 2 and "unknown UI 'grafana'" in stderr
