"""The three floors hold: every import points down, and the DAGs and the CLI call only the jobs.

The import-linter contract lives in pyproject.toml; these tests run it on the real tree, and on a copy
with one deliberate upward import to prove the contract can fail.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("aisle", "ingestion", "feature_repo", "models", "serving", "monitoring")
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _copy_tree(dest: Path) -> Path:
    for name in PACKAGES:
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


def test_every_import_points_down() -> None:
    done = _lint(ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "1 kept, 0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "upward"),
    [
        ("ingestion/lake.py", "from aisle.app import services"),  # a stage importing the supervisor
        ("aisle/core/settings.py", "import ingestion.lake"),  # the core importing a stage
        ("ingestion/readers.py", "import models.data"),  # a stage importing a later stage
    ],
)
def test_an_upward_import_breaks_the_contract(tmp_path: Path, module: str, upward: str) -> None:
    root = _copy_tree(tmp_path)
    target = root / module
    target.write_text(target.read_text() + f"\n\ndef _upward() -> None:\n    {upward}  # noqa\n")
    done = _lint(root)
    assert done.returncode != 0, done.stdout[-2000:]
    assert "BROKEN" in done.stdout or "broken" in done.stdout


def _project_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return {n for n in names if n.split(".")[0] in PACKAGES}


def test_dag_tasks_call_only_the_jobs() -> None:
    for path in sorted((ROOT / "dags").glob("*.py")):
        for name in _project_imports(path):
            assert name.startswith(("aisle.app.jobs", "aisle.core")), f"{path.name} imports {name}"


@pytest.mark.parametrize("module", ["cli.py", "cli_models.py", "demo.py"])
def test_cli_and_demo_call_only_the_jobs(module: str) -> None:
    for name in _project_imports(ROOT / "aisle" / "app" / module):
        assert name == "aisle" or name.startswith("aisle."), f"{module} imports {name} below the jobs"
