"""Airflow's components as real processes on SQLite: trigger with conf through the REST API, assets
chain DAGs, Params refuse bad values, a failing task fails `aisle dags trigger --wait`, `down` leaves
no process behind.

One Airflow for the module (start-up costs ~30 s on a busy 2-core machine); a 80-shopper shop keeps
every run to seconds. `build_features` and `train_models` are paused so the asset chain stops at the
lake (their queued asset events show the chain would go on).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from aisle.app.airflow_client import AirflowClient, client_for
from aisle.app.airflow_server import airflow_down, airflow_status, airflow_up, password_file, read_state
from aisle.app.jobs import orchestration
from aisle.core.assets import LAKE_ASSET, RAW_EVENTS_ASSET
from aisle.core.errors import BadInput
from aisle.core.settings import Settings, load_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SHOP = {"users": 80, "items": 30, "days": 3, "seed": 5}


def _free_port() -> int:
    from aisle.app.services import free_port

    return free_port()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, AirflowClient]]:
    home = tmp_path_factory.mktemp("aisle-airflow")
    settings = load_settings(home=home, airflow_port=_free_port(), airflow_db_url=None)
    info = airflow_up(settings, timeout_s=240)
    try:
        client = client_for(settings)
        for dag_id in ("build_features", "train_models"):
            client.set_paused(dag_id, True)
        assert info["password"] and set(info["dags"]) >= {"generate_shop", "ingest_events"}
        yield settings, client
    finally:
        airflow_down(settings)


def _aisle(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AISLE_HOME": str(settings.paths.home),
        "AISLE_AIRFLOW_PORT": str(settings.airflow_port),
    }
    return subprocess.run(
        [sys.executable, "-m", "aisle.app.cli", *args], env=env, capture_output=True, text=True, timeout=300
    )


def test_status_shows_every_component_healthy_and_the_generated_login(
    live: tuple[Settings, AirflowClient],
) -> None:
    settings, _client = live
    status = airflow_status(settings)
    assert status["ok"], status
    assert set(status["components"]) >= {"api-server", "scheduler", "dag-processor"}
    stored = json.loads(password_file(settings).read_text())
    assert status["password"] == stored["admin"] and len(stored["admin"]) >= 16
    assert oct(password_file(settings).stat().st_mode & 0o777) == "0o600"
    # the password is the one Airflow accepts: a wrong one is refused
    with pytest.raises(Exception, match="refused the login"):
        AirflowClient(status["url"], "admin", "not-the-password").token()


def test_generate_then_ingest_through_the_rest_api_fills_the_lake(
    live: tuple[Settings, AirflowClient],
) -> None:
    from ingestion.lake import EventLake

    settings, client = live
    shop = orchestration.trigger(
        settings, {"dag_id": "generate_shop", "conf": SHOP, "wait": True, "reason": "live test"}
    )
    assert shop["state"] == "success", shop
    generated = client.xcom("generate_shop", shop["run_id"], "generate")
    assert generated["reason"]["kind"] == "trigger" and generated["reason"]["detail"] == "live test"

    # the raw-events asset event schedules ingest_events on its own
    chained = orchestration.follow(settings, {"dag_id": "ingest_events", "after": "", "timeout_s": 240})
    assert chained["state"] == "success" and chained["run_type"] == "asset_triggered", chained
    ingested = client.xcom("ingest_events", chained["run_id"], "stream")
    assert ingested["batch"]["accepted"] == generated["events"]
    assert ingested["batch"]["reason"]["kind"] == "asset"
    assert "generate_shop" in ingested["batch"]["reason"]["detail"]
    assert EventLake(settings.paths.lake).count() == generated["events"]

    # ingest_events published the lake asset (what schedules build_features, paused here)
    lake_events = client.asset_events(LAKE_ASSET[1])
    assert [e["source_run_id"] for e in lake_events] == [chained["run_id"]]
    assert lake_events[0]["extra"]["accepted"] == generated["events"]

    # ingest_events by hand with conf: the same file again adds nothing, every row is a duplicate
    events_file = str(settings.paths.raw / "shop" / "events.parquet")
    again = orchestration.trigger(
        settings, {"dag_id": "ingest_events", "conf": {"sources": [events_file]}, "wait": True}
    )
    assert again["state"] == "success", again
    batch = client.xcom("ingest_events", again["run_id"], "stream")["batch"]
    assert batch["duplicates"] == generated["events"] and batch["accepted"] == 0
    assert batch["reason"]["kind"] == "manual"
    assert EventLake(settings.paths.lake).count() == generated["events"]


def test_bad_conf_is_refused_with_the_params_message(live: tuple[Settings, AirflowClient]) -> None:
    settings, client = live
    before = len(client.runs("generate_shop", limit=100))
    with pytest.raises(BadInput, match="Invalid input for param users: 0 is less than the minimum of 1"):
        orchestration.trigger(settings, {"dag_id": "generate_shop", "conf": {"users": 0}})
    done = _aisle(settings, "dags", "trigger", "generate_shop", "--conf", '{"format": "xlsx"}')
    assert done.returncode == 2, done.stderr
    assert "Invalid input for param format" in done.stderr and "Traceback" not in done.stderr
    assert len(client.runs("generate_shop", limit=100)) == before  # no run was created


def test_a_failing_task_fails_trigger_wait_with_its_log(live: tuple[Settings, AirflowClient]) -> None:
    settings, _client = live
    conf = json.dumps({"sources": ["/no/such/events.csv"]})
    done = _aisle(settings, "dags", "trigger", "ingest_events", "--conf", conf, "--wait")
    assert done.returncode == 1, done.stderr
    assert "task batch failed" in done.stderr
    assert "/no/such/events.csv: no such file or directory" in done.stderr
    assert "What to do" in done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["ok"] is False and summary["state"] == "failed"
    assert summary["failures"][0]["task"] == "batch"


def test_an_asset_event_posted_through_the_rest_api_schedules_ingest(
    live: tuple[Settings, AirflowClient],
) -> None:
    """What a shop's export job (or the stream ingester, for the lake) does: announce new data."""
    from datetime import UTC, datetime

    settings, client = live
    since = datetime.now(UTC).isoformat()
    posted = orchestration.publish_asset(settings, {"uri": RAW_EVENTS_ASSET[1], "extra": {"files": 1}})
    assert posted["event_id"] is not None
    chained = orchestration.follow(settings, {"dag_id": "ingest_events", "after": since, "timeout_s": 240})
    assert chained["state"] == "success" and chained["run_type"] == "asset_triggered", chained
    reason = client.xcom("ingest_events", chained["run_id"], "stream")["batch"]["reason"]
    assert reason["kind"] == "asset" and "outside Airflow (REST API)" in reason["detail"]
    assert reason["events"][0]["extra"]["files"] == 1  # Airflow adds from_rest_api: true


def _our_processes(airflow_home: Path) -> list[str]:
    """Live processes whose environment names this Airflow home (components, workers, tasks)."""
    found = []
    marker = f"AIRFLOW_HOME={airflow_home}".encode()
    listing = subprocess.run(["ps", "-eo", "pid=,stat="], capture_output=True, text=True).stdout
    for line in listing.splitlines():
        pid, stat = line.split()
        if stat.startswith("Z"):
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker in environ:
            found.append(pid)
    return found


def test_down_stops_everything_up_started(live: tuple[Settings, AirflowClient]) -> None:
    """Last in the module: stops the shared Airflow and checks with ps that nothing of it is left."""
    settings, _client = live
    assert _our_processes(settings.paths.airflow), "nothing found to stop"
    password = airflow_status(settings)["password"]
    stopped = airflow_down(settings)
    assert all(v["stopped"] for v in stopped.values()) and set(stopped) >= {"api-server", "scheduler"}
    assert _our_processes(settings.paths.airflow) == []
    assert read_state(settings) == {}
    status = airflow_status(settings)
    assert not status["ok"] and "aisle airflow up" in status["note"]
    assert status["password"] == password  # generated once per home, kept for the next `up`
