"""Generate a synthetic shop (catalog, users, events) into the raw area of AISLE_HOME.

Publishes `aisle_raw_events` (new event files), which schedules `ingest_events`. The trigger form's
defaults are the generator's own (`aisle.app.jobs.shop.GenerateParams`).
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import Asset, dag, task

from aisle.app.jobs import shop, tasks
from aisle.core.assets import RAW_EVENTS_ASSET

RAW = Asset(name=RAW_EVENTS_ASSET[0], uri=RAW_EVENTS_ASSET[1])


@dag(
    dag_id="generate_shop",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["aisle", "data"],
    default_args=tasks.default_args(),
    params=tasks.dag_params(
        shop.GenerateParams,
        {
            "users": ("Number of shoppers", {"minimum": 1}),
            "items": ("Number of catalog items", {"minimum": 1}),
            "days": ("Days of simulated history", {"minimum": 1}),
            "seed": "Random seed: the same seed gives the same shop",
            "start": ("First day of the period (UTC), YYYY-MM-DD", {"format": "date"}),
            "format": ("Event file format", {"enum": list(shop.EVENT_FORMATS)}),
            "shift": ("Drift on purpose from shift_at on (null: none)", {"enum": [None, *shop.SHIFTS]}),
            "shift_at": ("Day of the period (0 = the first) from which the shift applies", {"minimum": 1}),
        },
    ),
    doc_md=__doc__,
)
def generate_shop() -> None:
    @task(outlets=[RAW])
    def generate(params: dict[str, Any] | None = None) -> dict[str, Any]:
        summary = tasks.run_job(shop.generate, tasks.job_params(params, shop.GenerateParams))
        tasks.set_outlet_extra(RAW, {"events": summary.get("events"), "paths": summary.get("paths")})
        return summary

    generate()


generate_shop()
