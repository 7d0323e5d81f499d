"""The supervised stream ingester (`aisle services up --stream`): it consumes into the lake, comes back
after its ingester is SIGKILLed (losing and doubling nothing), and `down` leaves no process behind."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from aisle.app.jobs import shop as shop_jobs
from aisle.app.services import embedded_services
from aisle.app.stream_supervisor import read_state, stream_down, stream_status, stream_up
from aisle.core.endpoints import is_alive
from aisle.core.settings import load_settings
from ingestion.lake import EventLake
from ingestion.pipeline import Ingester
from ingestion.stream import stream_file

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def wait_for(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_supervisor_ingests_restarts_a_killed_ingester_and_stops_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env from the checkout
    settings = load_settings(home=tmp_path / "aisle", redis_url=None, kafka_bootstrap=None)
    shop = shop_jobs.generate(settings, dict(users=150, items=40, days=4, seed=3))
    events = settings.paths.raw / "shop" / "events.parquet"
    lake = EventLake(settings.paths.lake)
    Ingester(settings).ingest_catalog(
        pq.read_table(settings.paths.raw / "shop" / "catalog.parquet"), "catalog"
    )
    with embedded_services(settings):
        monkeypatch.setenv("AISLE_HOME", str(settings.paths.home))
        half = shop["events"] // 2
        stream_file(settings, events, limit=half)
        started = stream_up(settings)
        try:
            assert started["started"] and stream_status(settings)["running"]
            wait_for(lambda: lake.count() >= half, 120, f"{half} events in the lake")

            # a crash: the ingester dies without warning; the supervisor starts a new one
            first = read_state(settings)["child_pid"]
            os.kill(first, signal.SIGKILL)
            wait_for(lambda: read_state(settings).get("restarts") == 1, 30, "a restart")
            wait_for(lambda: read_state(settings).get("child_pid") not in (None, first), 30, "a new ingester")
            assert read_state(settings)["last_exit"]["code"] == -signal.SIGKILL

            stream_file(settings, events, offset=half)
            total = shop["events"]
            wait_for(lambda: lake.count() >= total, 120, "every event")
        finally:
            pids = [read_state(settings).get("pid"), read_state(settings).get("child_pid")]
            stopped = stream_down(settings)
        assert stopped["stopped"] and "committing" in stopped["note"]
        assert not any(isinstance(p, int) and is_alive(p) for p in pids)
        ids = lake.read()["event_id"].to_pylist()
        assert len(ids) == len(set(ids))  # nothing doubled by the restart
        assert len(ids) == shop["events"]  # nothing lost
