"""One Airflow home (SQLite) for all DAG tests, created before Airflow is first imported."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from aisle.core.settings import Settings, get_settings, load_settings


@pytest.fixture(scope="session")
def airflow_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    from aisle.app.dag_runner import prepare_airflow

    home = tmp_path_factory.mktemp("aisle-home")
    saved = dict(os.environ)
    os.environ["AISLE_HOME"] = str(home)
    get_settings.cache_clear()
    settings = load_settings()
    prepare_airflow(settings)
    yield settings
    os.environ.clear()
    os.environ.update(saved)
    get_settings.cache_clear()


@pytest.fixture
def dag_settings(
    airflow_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """A fresh AISLE_HOME per DAG test (lake, features, services), sharing the session's Airflow DB.

    DAG tasks read settings through get_settings(), i.e. from AISLE_HOME, so that is what changes.
    """
    monkeypatch.setenv("AISLE_HOME", str(tmp_path / "aisle"))
    get_settings.cache_clear()
    yield load_settings()
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def dagbag(airflow_settings: Settings) -> object:
    from airflow.dag_processing.dagbag import DagBag

    from aisle.app.dag_runner import DAGS_FOLDER

    return DagBag(dag_folder=str(DAGS_FOLDER))


def dag_files() -> list[Path]:
    from aisle.app.dag_runner import DAGS_FOLDER

    return sorted(p for p in DAGS_FOLDER.glob("*.py") if not p.name.startswith("_"))
