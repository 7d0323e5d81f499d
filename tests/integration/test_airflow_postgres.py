"""Airflow's components on PostgreSQL (AISLE_AIRFLOW_DB_URL): migrate, start, run a DAG, stop.

Uses the PostgreSQL on 127.0.0.1:5432 (trust auth, as on the project's machines) with a database of
its own, created here and dropped at the end; skipped with the reason when no PostgreSQL answers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from aisle.app.airflow_server import airflow_down, airflow_status, airflow_up
from aisle.app.jobs import orchestration
from aisle.core.settings import load_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SERVER = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "postgres"}


@pytest.fixture
def database() -> Iterator[str]:
    import psycopg

    try:
        admin = psycopg.connect(connect_timeout=3, autocommit=True, **SERVER)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL at 127.0.0.1:5432 ({str(exc).strip()})")
    name = f"aisle_airflow_test_{os.getpid()}"
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://{SERVER['user']}@{SERVER['host']}:{SERVER['port']}/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            cur.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,))
            assert cur.fetchone() == (0,)
        admin.close()


def test_components_run_a_dag_on_postgresql(database: str, tmp_path: object) -> None:
    from aisle.app.services import free_port

    settings = load_settings(home=f"{tmp_path}/aisle", airflow_db_url=database, airflow_port=free_port())
    info = airflow_up(settings, timeout_s=240)
    try:
        assert info["migrated"] and info["db"].startswith("postgresql://postgres@")
        assert not (settings.paths.airflow / "airflow.db").exists()  # nothing fell back to SQLite
        run = orchestration.trigger(
            settings,
            {"dag_id": "generate_shop", "conf": {"users": 40, "items": 20, "days": 2}, "wait": True},
        )
        assert run["state"] == "success", run
        assert airflow_status(settings)["ok"]
    finally:
        stopped = airflow_down(settings)
    assert all(v["stopped"] for v in stopped.values())
