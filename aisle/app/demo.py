"""`aisle demo`: every stage that exists, end to end, on a small generated shop.

Each stage is a function returning its summary, so the demo, the DAGs and the tests run the same code.
"""

from __future__ import annotations

import time
from typing import Any

from aisle.app.jobs import features as features_jobs
from aisle.app.jobs import ingest as ingest_jobs
from aisle.app.jobs import shop as shop_jobs
from aisle.core.console import err_console
from aisle.core.settings import Settings, ensure_home


def stage(name: str) -> float:
    """A demo stage's title rule; returns when it started."""
    err_console.rule(f"[bold cyan]{name}")
    return time.perf_counter()


def run_demo(
    settings: Settings, *, users: int, items: int, days: int, keep_services: bool = True
) -> dict[str, Any]:
    from aisle.app.services import services_down, services_up

    ensure_home(settings)
    stages: dict[str, Any] = {}
    t = stage("1/8 services")
    stages["services"] = services_up(settings)
    stages["services"]["seconds"] = round(time.perf_counter() - t, 2)

    stage("2/8 synthetic shop")
    stages["generate"] = shop_jobs.generate(settings, {"users": users, "items": items, "days": days})

    stage("3/8 ingestion: history from files, the last 20% live through Kafka")
    ingest = ingest_jobs.replay_shop(settings)
    stages["ingest"] = ingest
    for name in ("batch", "stream"):
        c = ingest[name]
        err_console.print(
            f"{name:6}  read {c['read']:,}  accepted {c['accepted']:,}  duplicates {c['duplicates']:,}"
            f"  quarantined {c['quarantined']:,}"
        )

    stage("4/8 features: Spark → Feast offline store → Redis online store")
    features = features_jobs.build(settings)
    stages["features"] = features
    for name, table in features["spark"]["tables"].items():
        err_console.print(f"{name:24} {table['rows']:>8,} rows")
    err_console.print(f"materialized to Redis    {features['materialize']['rows']:>8,} rows")
    sample = first_user(settings)
    online = features_jobs.online(settings, {"user_id": sample})["user"]
    shown = {k.split("__")[1]: v for k, v in online.items() if k.endswith(("views_30d", "fav_category_30d"))}
    err_console.print(f"online features of {sample}: {shown}")

    stage("5/8 models: the train_models DAG (Airflow dag.test) → MLflow registry")
    stages["train"] = train_stage(settings)

    stage("6/8 batch recommendations from the champion")
    stages["recommend"] = recommend_stage(settings)

    stage("7/8 serving: the BentoML service on the champion, every endpoint called")
    from aisle.app.demo_serving import serving_stage

    stages["serving"] = serving_stage(settings, first_user(settings), keep_running=keep_services)

    stage("8/8 monitoring: a week of drift and quality reports → Evidently workspace and UI")
    stages["monitor"] = monitor_stage(settings)

    err_console.rule("[bold green]demo finished")
    err_console.print(f"state lives in        {settings.paths.home}")
    err_console.print(f"generated shop        {settings.paths.raw / 'shop'}")
    err_console.print(f"event lake            {settings.paths.lake}")
    err_console.print(f"quarantine            {settings.paths.quarantine}")
    err_console.print(f"validation Data Docs  {ingest['batch']['data_docs']}")
    err_console.print(f"feature tables        {settings.paths.features}")
    err_console.print(
        f"Feast repo            {settings.paths.feast} (feature_store.yaml: `feast` CLI works there)"
    )
    err_console.print(f"services (addresses)  {settings.paths.services_file}")
    err_console.print(
        f"MLflow                {settings.effective_mlflow_uri} (`mlflow ui --backend-store-uri ...`)"
    )
    err_console.print(f"recommendations       {stages['recommend']['out']}")
    err_console.print(f"recommendation API    {stages['serving']['url']}/ (OpenAPI page)")
    err_console.print(f"Evidently UI          {stages['monitor']['ui']} (`aisle monitor ui --stop` stops it)")
    err_console.print("next: `aisle services status`, `aisle services down` when you are done")
    if not keep_services:
        stages["services_down"] = services_down(settings)
        stages["evidently_ui_down"] = stop_monitor_ui(settings)
    return {"home": str(settings.paths.home), "stages": stages}


def first_user(settings: Settings) -> str:
    import pyarrow.parquet as pq

    return str(
        pq.read_table(settings.paths.raw / "shop" / "events.parquet", columns=["user_id"])["user_id"][0]
    )


#: Small enough for the demo's few minutes, large enough that the models learn something.
DEMO_TRAIN_PARAMS: dict[str, Any] = {"epochs": 3, "holdout_days": 7}


def train_stage(settings: Settings) -> dict[str, Any]:
    """Run the train_models DAG through Airflow and show the comparison table and the gate's verdict."""
    from aisle.app.dag_runner import run_dag

    return training_report(settings, run_dag(settings, "train_models", DEMO_TRAIN_PARAMS))


def training_report(settings: Settings, dag: dict[str, Any]) -> dict[str, Any]:
    """The newest training run's comparison table and the gate's verdict, on screen and as a summary."""
    import json

    import pandas as pd

    from aisle.app.jobs import models as model_jobs

    run = model_jobs.latest_run(settings)
    state = json.loads(run["state"].read_text())
    table = pd.read_csv(run["comparison"])
    shown = table.loc[:, ["model", "segment", "users", "ndcg@10", "ndcg@10_lo", "ndcg@10_hi", "recall@10"]]
    err_console.print(shown.round(4).to_string(index=False))
    gate = state["stages"].get("gate", {})
    verdict = "passed" if gate.get("passed") else f"refused: {'; '.join(gate.get('reasons', []))}"
    err_console.print(f"quality gate {verdict}")
    return {
        "dag": dag,
        "run_key": state["run_key"],
        "gate_passed": gate.get("passed"),
        "registered": state["stages"].get("register", {}).get("version"),
        "champion": model_jobs.list_models(settings)["champion"],
        "table": str(run["comparison"]),
    }


def recommend_stage(settings: Settings, n_users: int = 200) -> dict[str, Any]:
    """Batch recommendations for some known users and one the shop has never seen."""
    import logging

    import pyarrow.parquet as pq

    from aisle.app.jobs import models as model_jobs

    # the DAG run left Airflow's logging at INFO; Feast's registry-refresh lines are not for the demo
    for name in ("feast", "feature_repo"):
        logging.getLogger(name).setLevel(logging.WARNING)

    users = pq.read_table(settings.paths.raw / "shop" / "users.parquet", columns=["user_id"])["user_id"]
    chosen = [str(u) for u in users.to_pylist()[:n_users]] + ["a-shopper-never-seen"]
    users_file = settings.paths.home / "demo_users.txt"
    users_file.write_text("\n".join(chosen) + "\n")
    # the first run has no champion if the gate refused it; show the challenger then, and say so
    alias = "champion" if model_jobs.list_models(settings)["champion"] else "challenger"
    summary = model_jobs.recommend_batch(
        settings,
        {"users": str(users_file), "k": 10, "out": str(settings.paths.home / "recs.csv"), "alias": alias},
    )
    summary["alias"] = alias
    err_console.print(
        f"{summary['users']} users → {summary['rows']:,} rows at {summary['users_per_s']} users/s; "
        f"{summary['unknown_users']} unknown user(s) got cold-start lists"
    )
    return summary


def monitor_stage(settings: Settings, days: int = 7) -> dict[str, Any]:
    """The service's exposures into the lake, a week of daily reports (the dashboards' history), then the
    UI over them; retraining is only recorded here (the demo just trained)."""
    from aisle.app.jobs import monitoring as monitoring_jobs

    collected = monitoring_jobs.collect(settings, {"optional": True, "max_seconds": 30, "idle_seconds": 3})
    err_console.print(f"exposures from the service into the lake: {collected.get('stored', 0)}")
    report = monitoring_jobs.report(settings, {"backfill": days, "retrain": False})
    for name, share in report["drift_shares"].items():
        shown = "skipped" if share is None else f"drift share {share:.2f}"
        err_console.print(f"{name:14} {shown}")
    for decision in report["triggers"]["decisions"]:
        err_console.print(f"trigger {decision['cause']}: {decision['action']} ({decision['reason']})")
    ui = monitoring_jobs.ui(settings, {})
    err_console.print(f"Evidently UI: {ui['url']}  ({len(ui['projects'])} projects)")
    return {
        "as_of": report["as_of"],
        "drift_shares": report["drift_shares"],
        "decisions": report["triggers"]["decisions"],
        "report_file": report["report_file"],
        "ui": ui["url"],
    }


def stop_monitor_ui(settings: Settings) -> dict[str, Any]:
    from aisle.app.jobs import monitoring as monitoring_jobs

    return monitoring_jobs.ui(settings, {"stop": True})
