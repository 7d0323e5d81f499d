from __future__ import annotations

import pytest

from aisle.app.dag_runner import execute_dag
from aisle.app.jobs import shop as shop_jobs
from aisle.app.services import embedded_services
from aisle.core.assets import LAKE_ASSET
from aisle.core.settings import Settings
from ingestion.lake import EventLake
from ingestion.stream import stream_file


@pytest.mark.integration
def test_ingest_events_runs_batch_and_stream(dag_settings: Settings) -> None:
    shop = shop_jobs.generate(dag_settings, dict(users=120, items=40, days=4, seed=9))
    with embedded_services(dag_settings, redis=False):
        # the stream carries a replay of the first 300 events: the lake must not double them
        stream_file(dag_settings, dag_settings.paths.raw / "shop" / "events.parquet", limit=300)
        result = execute_dag(dag_settings, "ingest_events", {"max_seconds": 25, "idle_seconds": 4})
    assert result["state"] == "success"
    lake = EventLake(dag_settings.paths.lake)
    assert lake.count() == shop["events"]
    assert len(set(lake.read()["event_id"].to_pylist())) == shop["events"]
    assert "ingest_events" in asset_event_sources(LAKE_ASSET[1])


def asset_event_sources(uri: str) -> set[str]:
    """DAG ids that emitted an event for the Asset ``uri`` (what schedules downstream DAGs)."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    query = select(AssetEvent.source_dag_id).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
    with create_session() as session:
        return set(session.scalars(query.where(AssetModel.uri == uri)).all())
