"""Generate a synthetic shop (catalog, users, events) into the raw area of AISLE_HOME."""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import Param, dag, task


@dag(
    dag_id="generate_shop",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["aisle", "data"],
    default_args={"retries": 1, "retry_delay": pendulum.duration(seconds=30)},
    params={
        "users": Param(5000, type="integer", minimum=1, description="Number of shoppers"),
        "items": Param(1000, type="integer", minimum=1, description="Number of catalog items"),
        "days": Param(60, type="integer", minimum=1, description="Days of simulated history"),
        "seed": Param(42, type="integer", description="Random seed"),
    },
    doc_md=__doc__,
)
def generate_shop() -> None:
    @task
    def generate(params: dict[str, Any] | None = None) -> dict[str, Any]:
        from aisle.app.jobs import shop
        from aisle.core.settings import get_settings

        return shop.generate(get_settings(), dict(params or {}))

    generate()


generate_shop()
