from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from aisle.app.dag_runner import execute_dag
from aisle.app.jobs import shop as shop_jobs
from aisle.app.services import embedded_services
from aisle.core.assets import LAKE_ASSET
from aisle.core.settings import Settings
from feature_repo import materialization, store
from feature_repo import online as feast_online
from feature_repo.user_recent import from_events, from_row, to_table
from ingestion.lake import EventLake
from ingestion.stream import stream_file


@pytest.mark.integration
def test_ingest_events_runs_batch_and_stream(dag_settings: Settings) -> None:
    shop = shop_jobs.generate(dag_settings, dict(users=120, items=40, days=4, seed=9))
    with embedded_services(dag_settings):
        materialization.apply(
            dag_settings
        )  # the stream task pushes stream features, as `aisle ingest stream` does
        # the stream carries a replay of the first 300 events: the lake must not double them
        events = dag_settings.paths.raw / "shop" / "events.parquet"
        stream_file(dag_settings, events, limit=300)
        try:
            result = execute_dag(
                dag_settings, "ingest_events", {"stream": True, "max_seconds": 25, "idle_seconds": 4}
            )
            assert result["state"] == "success"
            streamed = pq.read_table(events).sort_by("ts").slice(0, 300)
            users = sorted(set(streamed["user_id"].to_pylist()))
            online = {
                u: from_row(row) for u, row in feast_online.read_user_recent(dag_settings, users).items()
            }
        finally:
            store.reset_store(dag_settings)
    lake = EventLake(dag_settings.paths.lake)
    assert lake.count() == shop["events"]
    assert len(set(lake.read()["event_id"].to_pylist())) == shop["events"]
    assert "ingest_events" in asset_event_sources(LAKE_ASSET[1])
    # the DAG's stream task folded and pushed exactly what the stream carried (the view's definition)
    assert all(state is not None for state in online.values())
    pushed = to_table({u: s for u, s in online.items() if s is not None})
    assert pushed.to_pylist() == from_events(streamed).to_pylist()


def asset_event_sources(uri: str) -> set[str]:
    """DAG ids that emitted an event for the Asset ``uri`` (what schedules downstream DAGs)."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    query = select(AssetEvent.source_dag_id).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
    with create_session() as session:
        return set(session.scalars(query.where(AssetModel.uri == uri)).all())
