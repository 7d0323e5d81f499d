"""The monitor DAG through Airflow's dag.test(): collect (no broker: skipped, not failed) → report →
retrain, on a shop whose taste shifted on its last day."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aisle.app.dag_runner import execute_dag
from aisle.app.jobs import shop as shop_jobs
from aisle.core.settings import Settings, get_settings
from ingestion.batch import ingest_batch


@pytest.mark.integration
def test_monitor_dag_reports_and_records_the_trigger(
    dag_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AISLE_MONITOR_RETRAIN", "off")  # the decision is recorded; training is tested apart
    get_settings.cache_clear()
    shop_jobs.generate(
        dag_settings, {"users": 3000, "items": 600, "days": 21, "seed": 7, "shift": "taste", "shift_at": 20}
    )
    ingest_batch(dag_settings, [dag_settings.paths.raw / "shop"])

    result = execute_dag(dag_settings, "monitor", {"window": "1d", "reference": "7d"})
    assert result["state"] == "success"
    (report,) = sorted((dag_settings.paths.monitoring / "reports").glob("*.json"))
    saved = json.loads(Path(report).read_text())
    assert "events" in saved["drift_detected"]
    assert saved["triggers"]["reason"].startswith("monitor: events drifted")
    state = json.loads((dag_settings.paths.monitoring / "triggers.json").read_text())
    assert "drift:events" in state["fired"]
