"""Monitor the shop daily: collect exposures, report drift and quality into Evidently, retrain on a cause.

1. `collect`: the Kafka `exposures` topic into the lake (bounded; skipped with a note when no broker
   answers, so a quiet day never fails the monitor).
2. `report`: drift of events, feature tables and served scores, recommendation quality from exposures
   and outcomes, the lake's quarantine rates and the service's guardrails, as snapshots in the Evidently
   workspace (`aisle monitor ui` shows the dashboards), plus the trigger decisions and their cool-down.
3. `retrain`: when a cause fired, starts `train_models` with the reason in its conf (recorded in MLflow
   and in the report).

The windows end at the end of the lake's newest day unless `at` is given. A/B experiment analyses join
this DAG when the experiments job lands. The work lives in `aisle.app.jobs.monitoring`.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import Param, dag, task


@dag(
    dag_id="monitor",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["aisle", "monitoring"],
    default_args={"retries": 1, "retry_delay": pendulum.duration(minutes=1)},
    params={
        "window": Param(
            "1d", type="string", pattern=r"^\d+(\.\d+)?[hdw]$", description="Current window (12h, 1d, 1w)"
        ),
        "reference": Param(
            "7d", type="string", pattern=r"^\d+(\.\d+)?[hdw]$", description="Reference window before it"
        ),
        "at": Param(
            None,
            type=["null", "string"],
            description="End of the current window (ISO); null = lake's newest day",
        ),
        "collect_exposures": Param(True, type="boolean", description="Consume the exposures topic first"),
        "retrain": Param(True, type="boolean", description="Start train_models when a trigger fires"),
        "train_conf": Param({}, type="object", description="train_models params for a triggered run"),
    },
    doc_md=__doc__,
)
def monitor() -> None:
    @task
    def collect(params: dict[str, Any] | None = None) -> dict[str, Any]:
        from aisle.app.jobs import monitoring
        from aisle.core.settings import get_settings

        if not (params or {}).get("collect_exposures", True):
            return {"skipped": "collect_exposures is off"}
        return monitoring.collect(get_settings(), {"optional": True, "max_seconds": 120, "idle_seconds": 5})

    @task
    def report(collected: dict[str, Any], params: dict[str, Any] | None = None) -> dict[str, Any]:
        from aisle.app.jobs import monitoring
        from aisle.core.settings import get_settings

        p = params or {}
        keys = ("window", "reference", "at")
        return monitoring.report(get_settings(), {**{k: p.get(k) for k in keys}, "retrain": False})

    @task
    def retrain(summary: dict[str, Any], params: dict[str, Any] | None = None) -> dict[str, Any]:
        from aisle.app.jobs import monitoring
        from aisle.core.settings import get_settings

        p = params or {}
        return monitoring.retrain(
            get_settings(),
            {
                "reason": summary["triggers"]["reason"] if p.get("retrain", True) else None,
                "train_conf": p.get("train_conf") or {},
                "mlflow_run_id": summary.get("mlflow_run_id"),
            },
        )

    retrain(report(collect()))  # type: ignore[arg-type]  # XComArgs resolve at run time


monitor()
