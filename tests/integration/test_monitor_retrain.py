"""A fired trigger really starts train_models (in a child `aisle dags test` when no Airflow runs), with
the reason in its conf, and the outcome lands on the monitoring report's MLflow run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aisle.app.jobs import monitoring as jobs
from aisle.app.jobs import shop as shop_jobs
from aisle.core.settings import load_settings
from ingestion.batch import ingest_batch

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_fired_trigger_runs_train_models_with_its_reason(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "aisle", monitor_retrain="in_process")
    shop_jobs.generate(
        settings, {"users": 3000, "items": 600, "days": 21, "seed": 7, "shift": "taste", "shift_at": 20}
    )
    ingest_batch(settings, [settings.paths.raw / "shop"])
    # the smallest real training run: popularity only (no features, no TensorFlow)
    summary = jobs.report(settings, {"train_conf": {"models": ["popularity"], "holdout_days": 3}})

    retrain = summary["triggers"]["retrain"]
    assert retrain["started"] and retrain["how"] == "in_process", retrain
    assert retrain["ok"] and retrain["state"] == "success", Path(retrain["log"]).read_text()[-2000:]
    assert retrain["conf"]["reason"] == summary["triggers"]["reason"]
    assert retrain["conf"]["models"] == ["popularity"]
    assert any((settings.paths.models / "runs").iterdir())  # train_models prepared and fitted a run

    import mlflow

    mlflow.set_tracking_uri(settings.effective_mlflow_uri)
    run = mlflow.get_run(summary["mlflow_run_id"])
    recorded = json.loads(run.data.tags["aisle.retrain"])
    assert recorded["state"] == "success" and recorded["conf"]["reason"].startswith("monitor: events drifted")
    assert run.data.tags["aisle.retrain_reason"] == summary["triggers"]["reason"]
