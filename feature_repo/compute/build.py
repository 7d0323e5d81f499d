"""The feature build: lake → the four offline feature tables, fully or from a given day on.

Incremental builds recompute the snapshot dates >= ``since`` from the events of the 30 days before
``since`` onwards (what the longest window needs), plus the date of every user's last purchase before
that, and overwrite just those partitions. The co-occurrence table always covers the whole lake.
Either way the output is a function of the lake alone, so running a build twice changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from aisle.core.errors import BadInput
from aisle.core.settings import Settings
from feature_repo.compute.cooccurrence import item_cooccurrence
from feature_repo.compute.frames import enrich
from feature_repo.compute.items import item_features
from feature_repo.compute.recent import write_user_recent
from feature_repo.compute.session import spark_session
from feature_repo.compute.storage import (
    count_rows,
    events_dir,
    read_catalog,
    read_events,
    write_single,
    write_snapshots,
)
from feature_repo.compute.user_category import user_category_affinity
from feature_repo.compute.users import LONGEST, attribute_windows, last_purchases, user_features
from feature_repo.tables import ITEM_COOCCURRENCE, ITEM_FEATURES, USER_CATEGORY, USER_FEATURES, USER_RECENT

Progress = Callable[[str], None]

STAGES = ("read", USER_FEATURES, ITEM_FEATURES, USER_CATEGORY, ITEM_COOCCURRENCE, USER_RECENT)

_EVENT_COLUMNS = ("event_type", "user_id", "item_id", "ts", "session_id", "value")


def _day(micros: int) -> date:
    return datetime.fromtimestamp(micros / 1_000_000, tz=UTC).date()


def build_features(
    settings: Settings, since: date | None = None, progress: Progress | None = None
) -> dict[str, Any]:
    """Build the feature tables under ``settings.paths.features``; returns a JSON-able summary.

    ``since=None`` rebuilds everything (and drops snapshot dates the lake no longer supports).
    """
    started = time.perf_counter()
    step = progress or (lambda _stage: None)
    if not any(events_dir(settings.paths.lake).glob("*=*/part-*.parquet")):
        raise BadInput("the event lake is empty; run `aisle ingest` first")

    step("read")
    spark = spark_session(settings)
    lake = read_events(spark, settings.paths.lake)
    stats = lake.agg(
        F.count(F.lit(1)).alias("n"),
        F.unix_micros(F.min("ts")).alias("first"),
        F.unix_micros(F.max("ts")).alias("last"),
    ).first()
    if stats is None or not stats["n"]:
        raise BadInput("the event lake is empty; run `aisle ingest` first")
    first_day, last_day = _day(stats["first"]), _day(stats["last"])
    catalog = read_catalog(spark, settings.paths.lake).cache()
    everything = enrich(lake.select(*_EVENT_COLUMNS), catalog, settings.rating_scale)

    prior = None
    window = everything
    if since is not None:
        window_start = since - timedelta(days=LONGEST)
        start = F.lit(datetime.combine(window_start, datetime.min.time(), tzinfo=UTC))
        recent = lake.where((F.col("event_date") >= F.lit(window_start)) & (F.col("ts") >= start))
        window = enrich(recent.select(*_EVENT_COLUMNS), catalog, settings.rating_scale)
        older = lake.where((F.col("event_date") < F.lit(window_start)) & (F.col("ts") < start))
        prior = last_purchases(older)
    cached: list[DataFrame] = [catalog]

    def keep(df: DataFrame) -> DataFrame:
        cached.append(df.persist(StorageLevel.MEMORY_AND_DISK))
        return df

    snapshot_from = max(since, first_day) if since is not None else first_day
    root = settings.paths.features
    root.mkdir(parents=True, exist_ok=True)
    incremental = since is not None
    try:
        window = keep(window)
        events_read = window.count()
        if snapshot_from <= last_day:
            step(USER_FEATURES)
            attributes = keep(attribute_windows(window, since))  # shared by users and affinity
            users = user_features(window, since, prior, attributes)
            write_snapshots(users, root / USER_FEATURES, ["user_id"], only_new_partitions=incremental)
            step(ITEM_FEATURES)
            items = item_features(window, catalog, since)
            write_snapshots(items, root / ITEM_FEATURES, ["item_id"], only_new_partitions=incremental)
            step(USER_CATEGORY)
            affinity = user_category_affinity(window, since, attributes)
            write_snapshots(
                affinity, root / USER_CATEGORY, ["user_id", "top_category"], only_new_partitions=incremental
            )
        step(ITEM_COOCCURRENCE)
        # the whole lake, whatever ``since``: pairs are not windowed
        pairs = item_cooccurrence(window if since is None else everything, built_at_us=stats["last"] + 1)
        write_single(pairs, root / ITEM_COOCCURRENCE, ["item_id"])
    finally:
        for df in cached:
            df.unpersist()
    step(USER_RECENT)  # every shopper's context from the whole lake, whatever ``since``
    recent_rows = write_user_recent(settings.paths.lake, root)

    snapshot_tables = (USER_FEATURES, ITEM_FEATURES, USER_CATEGORY)
    tables = {
        name: {
            "rows": count_rows(root, name, snapshot_from)
            if name in snapshot_tables
            else count_rows(root, name),
            "total_rows": count_rows(root, name),
            "path": str(root / name),
        }
        for name in (*snapshot_tables, ITEM_COOCCURRENCE)
    }
    tables[USER_RECENT] = {"rows": recent_rows, "total_rows": recent_rows, "path": str(root / USER_RECENT)}
    built = snapshot_from <= last_day
    return {
        "mode": "incremental" if incremental else "full",
        "since": since.isoformat() if since else None,
        "lake_events": int(stats["n"]),
        "events_read": events_read,
        "snapshot_dates": {
            "first": snapshot_from.isoformat() if built else None,
            "last": last_day.isoformat() if built else None,
            "days": (last_day - snapshot_from).days + 1 if built else 0,
        },
        "tables": tables,
        "features": str(root),
        "spark_master": spark.sparkContext.master,
        "seconds": round(time.perf_counter() - started, 3),
    }
