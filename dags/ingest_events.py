"""Ingest events into the lake: batch files first, then a bounded run of the Kafka stream.

Every row ends in the lake (once) or in quarantine (with its reason); the task fails if the counts do
not reconcile. On success the lake is published as the `aisle_event_lake` Asset, which schedules
`build_features`.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import Asset, Param, dag, task

from aisle.assets import LAKE_ASSET

LAKE = Asset(name=LAKE_ASSET[0], uri=LAKE_ASSET[1])


@dag(
    dag_id="ingest_events",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["aisle", "ingestion"],
    default_args={"retries": 1, "retry_delay": pendulum.duration(seconds=30)},
    params={
        "sources": Param(
            [], type="array", description="Files or directories to ingest; empty = $AISLE_HOME/raw/shop"
        ),
        "stream": Param(True, type="boolean", description="Also consume the Kafka events topic"),
        "max_seconds": Param(30, type="number", minimum=1, description="Bound of the stream run"),
        "idle_seconds": Param(5, type="number", minimum=1, description="Stop the stream when idle"),
    },
    doc_md=__doc__,
)
def ingest_events() -> None:
    @task
    def batch(params: dict[str, Any] | None = None) -> dict[str, Any]:
        from pathlib import Path

        from aisle.settings import get_settings
        from ingestion.pipeline import ingest_batch

        settings = get_settings()
        sources = [Path(p) for p in (params or {}).get("sources") or [settings.paths.raw / "shop"]]
        return ingest_batch(settings, sources)

    @task(outlets=[LAKE])
    def stream(batch_summary: dict[str, Any], params: dict[str, Any] | None = None) -> dict[str, Any]:
        from aisle.settings import get_settings
        from ingestion.stream import consume_stream

        p = params or {}
        if not p.get("stream", True):
            return {"batch": batch_summary, "stream": None}
        summary = consume_stream(
            get_settings(), max_seconds=float(p["max_seconds"]), idle_exit_seconds=float(p["idle_seconds"])
        )
        return {"batch": batch_summary, "stream": summary}

    stream(batch())  # type: ignore[arg-type]  # XComArg resolves to the dict at run time


ingest_events()
