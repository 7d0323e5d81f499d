"""Ingest new events into the lake: event files first, then (if asked) a bounded run of the Kafka stream.

Scheduled on `aisle_raw_events` (new files, e.g. from `generate_shop`, or posted through the REST API by
whatever drops them) and triggerable by hand. Every row ends in the lake (once) or in quarantine (with
its reason); the task fails if the counts do not reconcile. On success the lake is published as the
`aisle_event_lake` Asset, which schedules `build_features`.

The live stream is normally consumed by the supervised ingester (`aisle services up --stream`), not
here: `stream` is for catching up a topic when no ingester runs, bounded by `max_seconds`.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import Asset, Param, dag, task

from aisle.app.jobs import ingest, tasks
from aisle.core.assets import LAKE_ASSET, RAW_EVENTS_ASSET

RAW = Asset(name=RAW_EVENTS_ASSET[0], uri=RAW_EVENTS_ASSET[1])
LAKE = Asset(name=LAKE_ASSET[0], uri=LAKE_ASSET[1])


@dag(
    dag_id="ingest_events",
    schedule=[RAW],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["aisle", "ingestion"],
    default_args=tasks.default_args(),
    params={
        **tasks.dag_params(
            ingest.BatchParams, {"sources": "Files or directories to ingest; empty = $AISLE_HOME/raw/shop"}
        ),
        "stream": Param(False, type="boolean", description="Also consume the Kafka events topic (bounded)"),
        **tasks.dag_params(
            ingest.StreamParams,
            {
                "max_seconds": ("Bound of the stream run, seconds", {"minimum": 1}),
                "idle_seconds": ("Stop the stream run when no event came for this long", {"minimum": 1}),
                "push_features": "Push each shopper's stream features online, as `aisle ingest stream` does",
            },
            # a task must end: the job's own default (None) means "consume for ever"
            defaults={"max_seconds": 30, "idle_seconds": 5},
        ),
    },
    doc_md=__doc__,
)
def ingest_events() -> None:
    @task
    def batch(params: dict[str, Any] | None = None) -> dict[str, Any]:
        return tasks.run_job(ingest.batch, tasks.job_params(params, ingest.BatchParams), name="ingest.batch")

    @task(outlets=[LAKE])
    def stream(batch_summary: dict[str, Any], params: dict[str, Any] | None = None) -> dict[str, Any]:
        p = params or {}
        summary: dict[str, Any] = {"batch": batch_summary, "stream": None}
        if p.get("stream"):
            summary["stream"] = tasks.run_job(
                ingest.stream, tasks.job_params(p, ingest.StreamParams), name="ingest.stream"
            )
        accepted = sum(int((s or {}).get("accepted", 0)) for s in (summary["batch"], summary["stream"]))
        tasks.set_outlet_extra(LAKE, {"accepted": accepted})
        return summary

    stream(batch())  # type: ignore[arg-type]  # XComArg resolves to the dict at run time


ingest_events()
