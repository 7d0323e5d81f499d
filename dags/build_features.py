"""Build features whenever the lake changes: Spark feature tables → `feast apply` → materialize to Redis.

Scheduled on the `aisle_event_lake` Asset (published by `ingest_events` and by the supervised stream
ingester); publishes `aisle_features`, which the training DAG is scheduled on. `since` limits the Spark
rebuild to recent snapshot dates.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import Asset, dag, task

from aisle.app.jobs import features, tasks
from aisle.core.assets import FEATURES_ASSET, LAKE_ASSET

LAKE = Asset(name=LAKE_ASSET[0], uri=LAKE_ASSET[1])
FEATURES = Asset(name=FEATURES_ASSET[0], uri=FEATURES_ASSET[1])


@dag(
    dag_id="build_features",
    schedule=[LAKE],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["aisle", "features"],
    default_args=tasks.default_args(first_delay_s=60),
    params=tasks.dag_params(
        features.ComputeParams,
        {"since": ("Recompute snapshots from this date (YYYY-MM-DD); empty = all", {"format": "date"})},
    ),
    doc_md=__doc__,
)
def build_features() -> None:
    @task
    def spark_tables(params: dict[str, Any] | None = None) -> dict[str, Any]:
        return tasks.run_job(
            features.compute, tasks.job_params(params, features.ComputeParams), name="features.compute"
        )

    @task
    def feast_apply(spark_summary: dict[str, Any]) -> dict[str, Any]:
        return {"spark": spark_summary, "apply": tasks.run_job(features.apply, {}, name="features.apply")}

    @task(outlets=[FEATURES])
    def materialize(previous: dict[str, Any]) -> dict[str, Any]:
        online = tasks.run_job(features.materialize, {}, name="features.materialize")
        tasks.set_outlet_extra(FEATURES, {"rows": online.get("rows")})
        return {**previous, "materialize": online}

    materialize(feast_apply(spark_tables()))  # type: ignore[arg-type]  # XComArgs resolve at run time


build_features()
