"""Build features whenever the lake changes: Spark feature tables → `feast apply` → materialize to Redis.

Scheduled on the `aisle_event_lake` Asset (published by `ingest_events`); publishes `aisle_features`,
which the training DAG is scheduled on. `since` limits the Spark rebuild to recent snapshot dates.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import Asset, Param, dag, task

from aisle.core.assets import FEATURES_ASSET, LAKE_ASSET

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
        from aisle.app.jobs import features
        from aisle.core.settings import get_settings

        return features.compute(get_settings(), {"since": (params or {}).get("since")})

    @task
    def feast_apply(spark_summary: dict[str, Any]) -> dict[str, Any]:
        from aisle.app.jobs import features
        from aisle.core.settings import get_settings

        return {"spark": spark_summary, "apply": features.apply(get_settings())}

    @task(outlets=[FEATURES])
    def materialize(previous: dict[str, Any]) -> dict[str, Any]:
        from aisle.app.jobs import features
        from aisle.core.settings import get_settings

        return {**previous, "materialize": features.materialize(get_settings())}

    materialize(feast_apply(spark_tables()))  # type: ignore[arg-type]  # XComArgs resolve at run time


build_features()
