from __future__ import annotations

import pytest

from aisle.app.dag_runner import execute_dag
from aisle.app.jobs import features as features_jobs
from aisle.app.jobs import shop as shop_jobs
from aisle.app.services import embedded_services
from aisle.core.settings import Settings
from feature_repo.online import online_features
from ingestion.batch import ingest_batch


@pytest.mark.integration
@pytest.mark.slow
def test_build_features_then_training_set(dag_settings: Settings) -> None:
    shop_jobs.generate(dag_settings, dict(users=150, items=50, days=10, seed=21))
    ingest_batch(dag_settings, [dag_settings.paths.raw / "shop"])
    with embedded_services(dag_settings, kafka=False):
        result = execute_dag(dag_settings, "build_features", {})
        assert result["state"] == "success"
        # the newest snapshot of an active user is online in Redis
        user = "u00003"
        online = online_features(dag_settings, user)["user"]
        assert online["user_features__views_30d"] is not None
        summary = features_jobs.training_set(dag_settings, {"negatives": 1, "limit": 2_000})
    assert summary["rows"] == summary["positives"] + summary["negatives"]
    assert summary["negatives"] == summary["positives"]
    assert summary["features"] > 20 and summary["null_share"] < 0.9
