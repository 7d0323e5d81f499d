"""`aisle demo`: every stage that exists, end to end, on a small generated shop.

Each stage is a function returning its summary, so the demo, the DAGs and the tests run the same code.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from aisle.app.jobs import features as features_jobs
from aisle.app.jobs import ingest as ingest_jobs
from aisle.app.jobs import shop as shop_jobs
from aisle.core.console import counting_progress, err_console, staged_progress
from aisle.core.settings import Settings, ensure_home


def run_demo(
    settings: Settings, *, users: int, items: int, days: int, keep_services: bool = True
) -> dict[str, Any]:
    from aisle.app.services import services_down, services_up

    ensure_home(settings)
    started = time.perf_counter()
    stages: dict[str, Any] = {}
    where_logs_go()

    stage("1/9 services")
    t = time.perf_counter()
    stages["services"] = services_up(settings)
    stages["services"]["seconds"] = round(time.perf_counter() - t, 2)
    for name, info in stages["services"].items():
        if isinstance(info, dict):
            say(f"{name:6} {info.get('url') or info.get('bootstrap')}")

    stage("2/9 synthetic shop")
    with staged_progress("generate", list(shop_jobs.GENERATE_STAGES)) as step:
        shop = shop_jobs.generate(settings, {"users": users, "items": items, "days": days}, progress=step)
    stages["generate"] = shop
    say(
        f"{shop['users']:,} shoppers, {shop['items']:,} items, {shop['events']:,} events over {days} days "
        f"→ {settings.paths.raw / 'shop'}"
    )

    stage("3/9 ingestion: history from files, the last 20% live through Kafka")
    with staged_progress("ingest", list(ingest_jobs.REPLAY_STAGES)) as step:
        ingest = ingest_jobs.replay_shop(settings, progress=step)
    stages["ingest"] = ingest
    for name in ("batch", "stream"):
        c = ingest[name]
        say(
            f"{name:6}  read {c['read']:,}  accepted {c['accepted']:,}  duplicates {c['duplicates']:,}"
            f"  quarantined {c['quarantined']:,}"
        )

    stage("4/9 features: Spark → Feast offline store → Redis online store")
    with staged_progress("features", features_jobs.stages()) as step:
        features = features_jobs.build(settings, progress=step)
    stages["features"] = features
    for name, table in features["spark"]["tables"].items():
        say(f"{name:24} {table['rows']:>8,} rows")
    say(f"materialized to Redis    {features['materialize']['rows']:>8,} rows")
    sample = first_user(settings)
    online = features_jobs.online(settings, {"user_id": sample})["user"]
    shown = {k.split("__")[1]: v for k, v in online.items() if k.endswith(("views_30d", "fav_category_30d"))}
    say(f"online features of {sample}: {shown}")

    stage("5/9 models: the train_models DAG (Airflow dag.test) → MLflow registry")
    stages["train"] = train_stage(settings)

    online_stages(settings, stages, keep_services=keep_services)

    if not keep_services:
        stages["services_down"] = services_down(settings)
        stages["evidently_ui_down"] = stop_monitor_ui(settings)
    last_screen(
        settings,
        recs=stages["recommend"],
        train=stages["train"],
        seconds=time.perf_counter() - started,
        services_kept=keep_services,
        ingest=ingest,
        features=features,
        api=stages["serving"]["url"] if keep_services else None,
        evidently=stages["monitor"]["ui"] if keep_services else None,
        experiment=stages["experiment"],
    )
    return {"home": str(settings.paths.home), "stages": stages}


def online_stages(settings: Settings, stages: dict[str, Any], *, keep_services: bool) -> None:
    """Stages 6-9, the same in-process and through Airflow: batch recommendations, the service, a
    week of monitoring, the A/B experiment. Each stage's summary goes into ``stages``."""
    from aisle.app.demo_experiment import experiment_stage
    from aisle.app.demo_serving import serving_stage

    stage("6/9 batch recommendations from the champion")
    stages["recommend"] = recommend_stage(settings)

    stage("7/9 serving: the BentoML service on the champion, every endpoint called")
    stages["serving"] = serving_stage(settings, first_user(settings), keep_running=keep_services)

    stage("8/9 monitoring: a week of drift and quality reports → Evidently workspace and UI")
    stages["monitor"] = monitor_stage(settings)

    stage("9/9 A/B experiment: the champion vs popularity, simulated shoppers, the analysis")
    stages["experiment"] = experiment_stage(settings, stages["serving"]["url"] if keep_services else None)


def stage(title: str) -> float:
    """A demo stage's title rule; returns when it started. A title too long for one rule is split at
    its first colon, so the rule keeps the stage's name and the rest follows in full, never cut."""
    head, _, rest = title.partition(": ")
    if rest and len(title) + 6 > err_console.width:
        err_console.rule(f"[bold cyan]{head}")
        say(f"[cyan]{rest}[/]")
    else:
        err_console.rule(f"[bold cyan]{title}")
    return time.perf_counter()


def say(text: str) -> None:
    err_console.print(text, highlight=False)


def where_logs_go() -> None:
    """The demo is long: say at its start where the libraries' output goes (the session's log file)."""
    from aisle.core.logs import active

    session = active()
    if session is not None and not session.verbose:
        say(
            f"[dim]third-party logs (Airflow, Spark, TensorFlow, Feast) go to {session.path}; "
            "--verbose shows them here[/]"
        )


def last_screen(
    settings: Settings,
    *,
    recs: dict[str, Any],
    train: dict[str, Any],
    seconds: float,
    services_kept: bool,
    ingest: dict[str, Any] | None = None,
    features: dict[str, Any] | None = None,
    airflow: dict[str, Any] | None = None,
    api: str | None = None,
    evidently: str | None = None,
    experiment: dict[str, Any] | None = None,
) -> None:
    """What the demo made and the exact commands and URLs to look at it: no placeholders."""
    from aisle.app.ui import aisle_command, ui_running

    aisle = aisle_command(settings)
    home = settings.paths.home
    minutes, secs = divmod(round(seconds), 60)
    err_console.rule(f"[bold green]demo finished in {minutes}m {secs:02d}s")
    say(f"made under {home}")
    rows = []
    if ingest is not None:
        quarantined = ingest["batch"]["quarantined"] + ingest["stream"]["quarantined"]
        accepted = ingest["batch"]["accepted"] + ingest["stream"]["accepted"]
        rows.append(("event lake", "lake/", f"{accepted:,} events; {quarantined} quarantined: quarantine/"))
    if features is not None:
        tables = len(features["spark"]["tables"])
        rows.append(
            ("features", "features/", f"{tables} tables, {features['materialize']['rows']:,} rows in Redis")
        )
    version = f"{recs['model']} v{recs['model_version']} is {recs['alias']}"
    run = Path(train["table"]).relative_to(settings.paths.models)
    rows.append(("models", "models/", f"{run} (the comparison); {version}"))
    rows.append(("recommendations", "recs.csv", f"{recs['rows']:,} rows for {recs['users']} shoppers"))
    if experiment is not None:
        report = Path(experiment["report"]).relative_to(home)
        rows.append(("A/B experiment", str(report.parent) + "/", f"{report.name}: {experiment['verdict']}"))
    for what, where, note in rows:
        say(f"  {what:16} {where:10} {note}")
    running = ui_running(settings)
    say("look at it")
    if api is not None:
        say(f"  {api}/")
        say("      the recommendation API: its OpenAPI page; the curl lines above call it")
        say(f"  {api}/ui/")
        say("      the storefront: pick a shopper, act, search by meaning; analyst charts at /ui/insights")
    if airflow is not None:
        login = f"{airflow['username']} / {airflow['password']}"
        say(f"  {airflow['url']}")
        say(f"      Airflow: DAG runs and task logs; login {login}")
    say(f"  {running.get('mlflow') or aisle + ' ui mlflow'}")
    say("      MLflow: runs, the comparison table, the registered model and its aliases")
    say(f"  {running.get('docs') or (settings.paths.data_docs / 'index.html').as_uri()}")
    say(f"      Great Expectations Data Docs: what the gate checked (or `{aisle} ui docs` to serve them)")
    if evidently is not None:
        say(f"  {evidently}")
        say("      Evidently: drift and recommendation-quality dashboards, one project per concern")
    say(f"  {aisle} models list")
    say("      registered versions and their aliases")
    say(f"  head {home / 'recs.csv'}")
    say("      user_id, item_id, rank, score (the ranker's engagement estimate, 0-1, for every shopper)")
    done = [f"{aisle} ui --stop"]
    if services_kept:
        done += [f"{aisle} airflow down"] if airflow is not None else []
        done += [f"{aisle} services down"]
    say(f"when you are done: {'; '.join(done)}")


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

    with err_console.status("Airflow runs train_models: split, fit 8 models, compare, gate, register"):
        dag = run_dag(settings, "train_models", DEMO_TRAIN_PARAMS)
    return training_report(settings, dag)


def training_report(settings: Settings, dag: dict[str, Any]) -> dict[str, Any]:
    """The newest training run's comparison table and the gate's verdict, on screen and as a summary."""
    import json

    import pandas as pd

    from aisle.app.jobs import models as model_jobs

    run = model_jobs.latest_run(settings)
    state = json.loads(run["state"].read_text())
    err_console.print(comparison_table(pd.read_csv(run["comparison"])))
    gate = state["stages"].get("gate", {})
    verdict = "passed" if gate.get("passed") else f"refused: {'; '.join(gate.get('reasons', []))}"
    say(f"quality gate {verdict}")
    return {
        "dag": dag,
        "run_key": state["run_key"],
        "gate_passed": gate.get("passed"),
        "registered": state["stages"].get("register", {}).get("version"),
        "champion": model_jobs.list_models(settings)["champion"],
        "table": str(run["comparison"]),
    }


def comparison_table(table: Any) -> Any:
    """One row per model (NDCG@10 with its 95% interval, by shopper history, Recall@10): one screen."""
    from rich.table import Table

    by = table.set_index(["model", "segment"])
    out = Table(box=None, pad_edge=False, header_style="bold")
    out.add_column("model")
    for name in ("NDCG@10 [95% interval]", "with history", "no history", "Recall@10"):
        out.add_column(name, justify="right")
    for model in dict.fromkeys(table["model"]):
        everyone = by.loc[(model, "all")]
        cell = f"{everyone['ndcg@10']:.4f} [{everyone['ndcg@10_lo']:.4f}, {everyone['ndcg@10_hi']:.4f}]"
        segment = [
            f"{by.loc[(model, s), 'ndcg@10']:.4f}" if (model, s) in by.index else "-"
            for s in ("with_history", "without_history")
        ]
        out.add_row(str(model), cell, *segment, f"{everyone['recall@10']:.4f}")
    return out


def recommend_stage(settings: Settings, n_users: int = 200) -> dict[str, Any]:
    """Batch recommendations for some known users and one the shop has never seen."""
    import pyarrow.parquet as pq

    from aisle.app.jobs import models as model_jobs

    users = pq.read_table(settings.paths.raw / "shop" / "users.parquet", columns=["user_id"])["user_id"]
    chosen = [str(u) for u in users.to_pylist()[:n_users]] + ["a-shopper-never-seen"]
    users_file = settings.paths.home / "demo_users.txt"
    users_file.write_text("\n".join(chosen) + "\n")
    # the first run has no champion if the gate refused it; show the challenger then, and say so
    alias = "champion" if model_jobs.list_models(settings)["champion"] else "challenger"
    params = {"users": str(users_file), "k": 10, "out": str(settings.paths.home / "recs.csv"), "alias": alias}
    with counting_progress("recommend", len(chosen)) as advance:
        summary = model_jobs.recommend_batch(settings, params, progress=advance)
    summary["alias"] = alias
    say(
        f"{summary['users']} users → {summary['rows']:,} rows at {summary['users_per_s']} users/s; "
        f"{summary['unknown_users']} unknown user(s) got cold-start lists"
    )
    return summary


def monitor_stage(settings: Settings, days: int = 7) -> dict[str, Any]:
    """The service's exposures into the lake, a week of daily reports (the dashboards' history), then the
    UI over them; retraining is only recorded here (the demo just trained)."""
    from aisle.app.jobs import monitoring as monitoring_jobs

    collected = monitoring_jobs.collect(settings, {"optional": True, "max_seconds": 60, "idle_seconds": 5})
    err_console.print(f"exposures from the service into the lake: {collected.get('stored', 0)}")
    report = monitoring_jobs.report(settings, {"backfill": days, "retrain": False})
    if collected.get("stored") and "quality" in report["skipped"]:
        err_console.print(
            "(the service's exposures are stamped today, the generated shop's days end "
            f"{report['as_of'][:10]}: quality is charted once the service serves the days monitored)"
        )
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


def stop_after_failure(settings: Settings, *, airflow: bool) -> None:
    """What a failed ``--no-keep-services`` demo may have left running: the embedded services, Airflow
    and the Evidently UI (the serving stage stops its own service). Each is tried; none hides the error."""
    import contextlib

    from aisle.app.services import services_down
    from aisle.core.errors import AisleError

    steps = [services_down, stop_monitor_ui]
    if airflow:
        from aisle.app.airflow_server import airflow_down

        steps.insert(0, airflow_down)
    for step in steps:
        with contextlib.suppress(AisleError, OSError):
            step(settings)
