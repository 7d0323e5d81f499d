"""`aisle demo` through the running Airflow: trigger, follow the asset chain, show each task's progress.

One trigger starts the loop: `generate_shop` publishes new event files, which schedule `ingest_events`,
whose lake asset schedules `build_features`. `train_models` is paused while the chain runs and then
triggered with the demo's smaller training parameters (and a reason saying so), so the demo trains
once, in a few minutes; its asset-triggered runs use the DAG's defaults. Batch recommendations are
then written in-process from the registered policy, and the recommendation service is started on the
champion (the `deploy_service` run the new champion scheduled finds no service yet and is skipped).
`aisle demo --no-airflow` keeps the in-process path (`aisle.app.demo`).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from aisle.app.cli_airflow import print_failures, print_login, print_task_change
from aisle.app.demo import (
    DEMO_TRAIN_PARAMS,
    last_screen,
    online_stages,
    stage,
    stop_monitor_ui,
    training_report,
    where_logs_go,
)
from aisle.app.jobs import orchestration
from aisle.core.console import err_console
from aisle.core.errors import AisleError
from aisle.core.settings import Settings, ensure_home

FOLLOW_TIMEOUT_S = 1800.0


def _checked(summary: dict[str, Any]) -> dict[str, Any]:
    err_console.print(
        f"  → {summary['dag_id']} {summary['state']}  {summary['url']}", highlight=False, soft_wrap=True
    )
    if summary.get("ok") is False:
        print_failures(summary)
        raise AisleError(f"the {summary['dag_id']} run {summary['run_id']} failed; see its log above")
    return summary


def run_demo_airflow(
    settings: Settings, *, users: int, items: int, days: int, keep_services: bool = True
) -> dict[str, Any]:
    from aisle.app.airflow_client import client_for
    from aisle.app.airflow_server import airflow_down, airflow_up
    from aisle.app.services import services_down, services_up

    ensure_home(settings)
    demo_started = time.perf_counter()
    stages: dict[str, Any] = {}
    where_logs_go()

    def follow(dag_id: str) -> dict[str, Any]:
        """The run of ``dag_id`` an asset event started after the demo began, to its end."""
        params = {"dag_id": dag_id, "after": since, "timeout_s": FOLLOW_TIMEOUT_S}
        return _checked(orchestration.follow(settings, params, progress=print_task_change))

    t = stage("1/9 services: Redis, the Kafka-protocol broker and Airflow")
    stages["services"] = services_up(settings)
    with err_console.status("starting Airflow (API server, scheduler, DAG processor)"):
        stages["airflow"] = airflow_up(settings)
    print_login(stages["airflow"])
    stages["services"]["seconds"] = round(time.perf_counter() - t, 2)
    client = client_for(settings)
    client.set_paused("train_models", True)  # triggered below with the demo's parameters instead
    for dag_id in ("ingest_events", "build_features"):
        client.set_paused(dag_id, False)
    since = datetime.now(UTC).isoformat()

    stage("2/9 synthetic shop: trigger generate_shop")
    conf = {"users": users, "items": items, "days": days}
    stages["generate"] = _checked(
        orchestration.trigger(
            settings,
            {"dag_id": "generate_shop", "conf": conf, "wait": True, "reason": "aisle demo"},
            progress=print_task_change,
        )
    )

    stage("3/9 ingestion: ingest_events, scheduled by the new files (asset aisle_raw_events)")
    stages["ingest"] = follow("ingest_events")
    batch = client.xcom("ingest_events", stages["ingest"]["run_id"], "stream")["batch"]
    err_console.print(
        f"  read {batch['read']:,}  accepted {batch['accepted']:,}  duplicates {batch['duplicates']:,}"
        f"  quarantined {batch['quarantined']:,}"
    )

    stage("4/9 features: build_features, scheduled by the lake (asset aisle_event_lake)")
    stages["features"] = follow("build_features")

    stage("5/9 models: train_models (demo parameters) → MLflow registry → aisle_champion")
    dag = _checked(
        orchestration.trigger(
            settings,
            {
                "dag_id": "train_models",
                "conf": dict(DEMO_TRAIN_PARAMS),
                "wait": True,
                "reason": "aisle demo: fewer epochs than the DAG's defaults",
            },
            progress=print_task_change,
        )
    )
    stages["train"] = training_report(settings, dag)

    online_stages(settings, stages, keep_services=keep_services)

    if not keep_services:
        stages["services_down"] = {"airflow": airflow_down(settings), **services_down(settings)}
        stages["evidently_ui_down"] = stop_monitor_ui(settings)
    last_screen(
        settings,
        recs=stages["recommend"],
        train=stages["train"],
        seconds=time.perf_counter() - demo_started,
        services_kept=keep_services,
        airflow=stages["airflow"] if keep_services else None,
        api=stages["serving"]["url"] if keep_services else None,
        evidently=stages["monitor"]["ui"] if keep_services else None,
        experiment=stages["experiment"],
    )
    return {"home": str(settings.paths.home), "airflow": stages["airflow"]["url"], "stages": stages}
