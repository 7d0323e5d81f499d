"""Run Aisle's DAGs locally: point Airflow at ``$AISLE_HOME/airflow`` and the repo's ``dags/``.

Airflow reads its configuration from the environment when it is imported, so this must run before the
first ``import airflow`` (it is called from entry points, never at import time).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from aisle.core.errors import AisleError, BadInput
from aisle.core.logs import attach_handlers, last_exception, log_size
from aisle.core.settings import Settings, child_env, ensure_home, export_env, process_env

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"


def airflow_db_env(url: str) -> dict[str, str]:
    """Airflow's DB settings for ``url``. PostgreSQL goes through psycopg 3 (the pinned driver) for
    both the sync engine and the async one Airflow also builds; left to itself, Airflow would derive
    an asyncpg URL, a driver the stack does not install."""
    if url.startswith(("postgresql:", "postgresql+psycopg:", "postgres:")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
        return {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": url}
    return {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url}


def airflow_env(settings: Settings) -> dict[str, str]:
    home = settings.paths.airflow
    return {
        **process_env(settings),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        **airflow_db_env(settings.effective_airflow_db_url),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
    }


def _migration_marker(settings: Settings) -> str:
    """What a finished migration is valid for: this Airflow version against this database."""
    import hashlib
    from importlib.metadata import version

    digest = hashlib.sha256(settings.effective_airflow_db_url.encode()).hexdigest()[:16]
    return f"{version('apache-airflow-core')} {digest}"


def migrate_airflow_db(settings: Settings) -> bool:
    """``airflow db migrate`` unless this Airflow version already migrated this DB; True if it ran."""
    marker = settings.paths.airflow / ".migrated"
    settings.paths.airflow.mkdir(parents=True, exist_ok=True)
    expected = _migration_marker(settings)
    sqlite_gone = settings.airflow_db_url is None and not (settings.paths.airflow / "airflow.db").exists()
    if not sqlite_gone and marker.exists() and marker.read_text().strip() == expected:
        return False
    done = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=child_env(airflow_env(settings)),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise AisleError(
            f"airflow db migrate failed ({settings.effective_airflow_db_url.split(':')[0]}): {last[0]}"
        )
    marker.write_text(expected + "\n")
    return True


def prepare_airflow(settings: Settings) -> dict[str, str]:
    """Export Airflow's environment for this process and create or upgrade its metadata DB once."""
    ensure_home(settings)
    env = airflow_env(settings)
    export_env(env)
    migrate_airflow_db(settings)
    return env


def load_dags() -> dict[str, Any]:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    attach_handlers()  # importing Airflow replaced the root logger's handlers with its own
    if bag.import_errors:
        first = next(iter(bag.import_errors.items()))
        raise AisleError(f"DAG import error in {first[0]}: {first[1].strip().splitlines()[-1]}")
    return dict(bag.dags)


def run_dag(settings: Settings, dag_id: str, conf: dict[str, Any]) -> dict[str, Any]:
    """Run one DAG in-process through ``dag.test()`` with ``conf`` as params; fail if any task fails."""
    prepare_airflow(settings)
    return execute_dag(settings, dag_id, conf)


def execute_dag(settings: Settings, dag_id: str, conf: dict[str, Any]) -> dict[str, Any]:
    """``dag.test()`` in a process whose Airflow is already prepared (tests reuse one Airflow home)."""
    dags = load_dags()
    if dag_id not in dags:
        raise BadInput(f"no DAG named {dag_id!r}; known: {', '.join(sorted(dags))}")
    mark = log_size()
    try:
        run = dags[dag_id].test(run_conf=conf)
    finally:
        attach_handlers()  # dag.test configures Airflow's task logging again
    state = str(getattr(run.state, "value", run.state))
    if state != "success":
        reason = last_exception(mark)  # the failing task's error, from this command's log file
        raise AisleError(
            f"DAG {dag_id} finished in state {state}"
            + (f" ({reason})" if reason else "")
            + f"; task logs: {settings.paths.airflow / 'logs'}"
        )
    return {"dag_id": dag_id, "run_id": run.run_id, "state": state, "conf": conf}
