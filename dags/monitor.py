"""Monitor the shop daily: collect exposures, report drift and quality into Evidently, retrain on a cause.

1. `collect`: the Kafka `exposures` topic into the lake (bounded; skipped with a note when no broker
   answers, so a quiet day never fails the monitor).
2. `report`: drift of events, feature tables and served scores, recommendation quality from exposures
   and outcomes, the lake's quarantine rates and the service's guardrails, as snapshots in the Evidently
   workspace (`aisle monitor ui` shows the dashboards), plus the trigger decisions and their cool-down.
3. `retrain`: when a cause fired, starts `train_models` with the reason in its conf (on this Airflow
   through its REST API; in a child `aisle dags test` when none runs), recorded in MLflow and the report.

The windows end at the end of the lake's newest day unless `at` is given. A/B experiment analyses join
this DAG when the experiments job offers one for all running experiments. The trigger form's defaults are
`aisle.app.jobs.monitoring.ReportParams`; the work lives in `aisle.app.jobs.monitoring`.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import dag, task

from aisle.app.jobs import monitoring, tasks

SPAN = r"^\d+(\.\d+)?[hdw]$"


@dag(
    dag_id="monitor",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["aisle", "monitoring"],
    default_args=tasks.default_args(retries=1, first_delay_s=60),
    params=tasks.dag_params(
        monitoring.ReportParams,
        {
            "window": ("Current window (12h, 1d, 1w)", {"pattern": SPAN}),
            "reference": ("Reference window just before it", {"pattern": SPAN}),
            "at": "End of the current window (ISO); null = the end of the lake's newest day",
            "backfill": ("Also report the windows before (the dashboards' history)", {"minimum": 1}),
            "retrain": "Start train_models when a trigger fires (else only record the decision)",
            "train_conf": "train_models params for a triggered run",
        },
    ),
    doc_md=__doc__,
)
def monitor() -> None:
    @task
    def collect() -> dict[str, Any]:
        return tasks.run_job(monitoring.collect, {"optional": True}, name="monitor.collect")

    @task
    def report(collected: dict[str, Any], params: dict[str, Any] | None = None) -> dict[str, Any]:
        chosen = {**tasks.job_params(params, monitoring.ReportParams), "retrain": False}
        return tasks.run_job(monitoring.report, chosen, name="monitor.report")

    @task
    def retrain(summary: dict[str, Any], params: dict[str, Any] | None = None) -> dict[str, Any]:
        p = params or {}
        chosen = {
            "reason": summary["triggers"]["reason"] if p.get("retrain", True) else None,
            "train_conf": p.get("train_conf") or {},
            "mlflow_run_id": summary.get("mlflow_run_id"),
        }
        return tasks.run_job(monitoring.retrain, chosen, name="monitor.retrain")

    retrain(report(collect()))  # type: ignore[arg-type]  # XComArgs resolve at run time


monitor()
