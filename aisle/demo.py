"""`aisle demo`: every stage that exists, end to end, on a small generated shop.

Each stage is a function returning its summary, so the demo, the DAGs and the tests run the same code.
"""

from __future__ import annotations

import time
from typing import Any

from aisle.console import err_console
from aisle.jobs import demo_ingest_job, features_build_job, generate_job
from aisle.settings import Settings, ensure_home


def run_demo(
    settings: Settings, *, users: int, items: int, days: int, keep_services: bool = True
) -> dict[str, Any]:
    from aisle.data.synthetic import ShopConfig
    from aisle.services import services_down, services_up
    from feature_repo.store import online_features

    ensure_home(settings)
    stages: dict[str, Any] = {}

    def stage(name: str) -> float:
        err_console.rule(f"[bold cyan]{name}")
        return time.perf_counter()

    t = stage("1/4 services")
    stages["services"] = services_up(settings)
    stages["services"]["seconds"] = round(time.perf_counter() - t, 2)

    stage("2/4 synthetic shop")
    stages["generate"] = generate_job(settings, ShopConfig(users=users, items=items, days=days))

    stage("3/4 ingestion: history from files, the last 20% live through Kafka")
    ingest = demo_ingest_job(settings, settings.paths.raw / "shop")
    stages["ingest"] = ingest
    for name in ("batch", "stream"):
        c = ingest[name]
        err_console.print(
            f"{name:6}  read {c['read']:,}  accepted {c['accepted']:,}  duplicates {c['duplicates']:,}"
            f"  quarantined {c['quarantined']:,}"
        )

    stage("4/4 features: Spark → Feast offline store → Redis online store")
    features = features_build_job(settings)
    stages["features"] = features
    for name, table in features["spark"]["tables"].items():
        err_console.print(f"{name:24} {table['rows']:>8,} rows")
    err_console.print(f"materialized to Redis    {features['materialize']['rows']:>8,} rows")
    sample = _first_user(settings)
    online = online_features(settings, sample)["user"]
    shown = {k.split("__")[1]: v for k, v in online.items() if k.endswith(("views_30d", "fav_category_30d"))}
    err_console.print(f"online features of {sample}: {shown}")

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
    err_console.print("next: `aisle services status`, `aisle services down` when you are done")
    if not keep_services:
        stages["services_down"] = services_down(settings)
    return {"home": str(settings.paths.home), "stages": stages}


def _first_user(settings: Settings) -> str:
    import pyarrow.parquet as pq

    return str(
        pq.read_table(settings.paths.raw / "shop" / "events.parquet", columns=["user_id"])["user_id"][0]
    )
