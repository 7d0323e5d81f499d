"""Build features whenever the lake changes: Spark feature tables → `feast apply` → materialize to Redis.

Scheduled on the `aisle_event_lake` Asset (published by `ingest_events`); publishes `aisle_features`,
which the training DAG is scheduled on. `since` limits the Spark rebuild to recent snapshot dates.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import Asset, Param, dag, task

from aisle.assets import FEATURES_ASSET, LAKE_ASSET

LAKE = Asset(name=LAKE_ASSET[0], uri=LAKE_ASSET[1])
FEATURES = Asset(name=FEATURES_ASSET[0], uri=FEATURES_ASSET[1])


@dag(
    dag_id="build_features",
    schedule=[LAKE],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["aisle", "features"],
    default_args={"retries": 1, "retry_delay": pendulum.duration(minutes=1)},
    params={
        "since": Param(
            None, type=["null", "string"], description="Recompute snapshots from this date (YYYY-MM-DD)"
        ),
    },
    doc_md=__doc__,
)
def build_features() -> None:
    @task
    def spark_tables(params: dict[str, Any] | None = None) -> dict[str, Any]:
        from datetime import date

        from aisle.settings import get_settings
        from feature_repo.compute.build import build_features as run_spark

        since = (params or {}).get("since")
        return run_spark(get_settings(), since=date.fromisoformat(since) if since else None)

    @task
    def feast_apply(spark_summary: dict[str, Any]) -> dict[str, Any]:
        from aisle.settings import get_settings
        from feature_repo.store import apply

        return {"spark": spark_summary, "apply": apply(get_settings())}

    @task(outlets=[FEATURES])
    def materialize(previous: dict[str, Any]) -> dict[str, Any]:
        from aisle.settings import get_settings
        from feature_repo.store import materialize as to_redis

        return {**previous, "materialize": to_redis(get_settings())}

    materialize(feast_apply(spark_tables()))  # type: ignore[arg-type]  # XComArgs resolve at run time


build_features()
