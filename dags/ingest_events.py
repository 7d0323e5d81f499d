"""Ingest events into the lake: batch files first, then a bounded run of the Kafka stream.

Every row ends in the lake (once) or in quarantine (with its reason); the task fails if the counts do
not reconcile. On success the lake is published as the `aisle_event_lake` Asset, which schedules
`build_features`.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import Asset, Param, dag, task

from aisle.core.assets import LAKE_ASSET

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
        "push_features": Param(
            True,
            type="boolean",
            description="Push each shopper's stream features online, as `aisle ingest stream` does",
        ),
    },
    doc_md=__doc__,
)
def ingest_events() -> None:
    @task
    def batch(params: dict[str, Any] | None = None) -> dict[str, Any]:
        from aisle.app.jobs import ingest
        from aisle.core.settings import get_settings

        return ingest.batch(get_settings(), {"sources": (params or {}).get("sources") or ()})

    @task(outlets=[LAKE])
    def stream(batch_summary: dict[str, Any], params: dict[str, Any] | None = None) -> dict[str, Any]:
        from aisle.app.jobs import ingest
        from aisle.core.settings import get_settings

        p = params or {}
        if not p.get("stream", True):
            return {"batch": batch_summary, "stream": None}
        summary = ingest.stream(
            get_settings(),
            {
                "max_seconds": float(p["max_seconds"]),
                "idle_seconds": float(p["idle_seconds"]),
                "push_features": bool(p.get("push_features", True)),
            },
        )
        return {"batch": batch_summary, "stream": summary}

    stream(batch())  # type: ignore[arg-type]  # XComArg resolves to the dict at run time


ingest_events()
