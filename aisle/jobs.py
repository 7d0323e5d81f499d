"""Pipeline jobs as plain functions returning JSON-able summaries.

The CLI, `aisle demo` and the Airflow DAGs all call these, so there is one implementation per stage.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from aisle.data.synthetic import Progress, ShopConfig, generate_shop, write_shop
from aisle.settings import Settings, ensure_home


def generate_job(
    settings: Settings,
    config: ShopConfig,
    *,
    event_format: str = "parquet",
    out: Path | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Generate a synthetic shop into ``out`` (default ``$AISLE_HOME/raw/shop``)."""
    started = time.perf_counter()
    config.validate()
    ensure_home(settings)
    shop = generate_shop(config, progress=progress)
    if progress:
        progress("write")
    paths = write_shop(shop, out or settings.paths.raw / "shop", event_format)
    return {
        **shop.summary(),
        "seed": config.seed,
        "paths": paths,
        "seconds": round(time.perf_counter() - started, 3),
    }


def demo_ingest_job(settings: Settings, shop_dir: Path, stream_fraction: float = 0.2) -> dict[str, Any]:
    """History from files, the most recent events live through Kafka: the split a real shop has."""
    import pyarrow.parquet as pq

    from aisle.data.synthetic import write_events
    from ingestion.pipeline import ingest_batch
    from ingestion.stream import consume_stream, produce_messages, stream_events

    events = pq.read_table(shop_dir / "events.parquet").sort_by("ts")
    cut = int(events.num_rows * (1.0 - stream_fraction))
    history = settings.paths.raw / "history" / "events-history.parquet"
    history.parent.mkdir(parents=True, exist_ok=True)
    write_events(events.slice(0, cut), history)
    batch = ingest_batch(settings, [shop_dir / "catalog.parquet", shop_dir / "users.parquet", history])
    produced = stream_events(settings, events.slice(cut))
    # a few broken messages, as any real producer sends now and then: the gate must quarantine them
    bad = [
        b'{"event_id": "demo-bad-1", "event_type": "view", "user_id": ',
        b'{"event_id": "demo-bad-2", "event_type": "teleport", "user_id": "u1", "item_id": "i1",'
        b' "ts": "2026-01-06T10:00:00Z"}',
        b'{"event_id": "demo-bad-3", "event_type": "rating", "value": 9, "user_id": "u1", "item_id": "i1",'
        b' "ts": "2026-01-06T10:00:00Z"}',
    ]
    produce_messages(settings, bad)
    stream = consume_stream(settings, idle_exit_seconds=3.0, max_seconds=300.0)
    return {"batch": batch, "produced": produced, "stream": stream}


def features_build_job(
    settings: Settings, since: Any = None, progress: Progress | None = None
) -> dict[str, Any]:
    """Spark features from the lake → `feast apply` → incremental materialization into Redis."""
    from feature_repo.compute.build import build_features
    from feature_repo.store import apply, materialize

    step = progress or (lambda _name: None)
    started = time.perf_counter()
    spark = build_features(settings, since=since, progress=step)
    step("feast apply")
    applied = apply(settings)
    step("materialize")
    online = materialize(settings)
    return {
        "spark": spark,
        "apply": applied,
        "materialize": online,
        "seconds": round(time.perf_counter() - started, 3),
    }


def label_frame(settings: Settings, *, days: int | None, limit: int, negatives: int, seed: int) -> Any:
    """Graded labels from the lake (purchase 3 > cart/wishlist 2 > view/click 1), newest ``days``, plus
    ``negatives`` random catalog items per positive (label 0) at the same instant."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    from aisle.errors import BadInput
    from feature_repo.tables import LABEL_GRADES
    from ingestion.lake import EventLake

    lake = EventLake(settings.paths.lake)
    events = lake.read().select(["user_id", "item_id", "event_type", "ts"])
    if events.num_rows == 0:
        raise BadInput("the event lake is empty; run `aisle ingest batch` or `aisle ingest stream` first")
    events = events.filter(pc.is_in(events["event_type"], pa.array(list(LABEL_GRADES))))
    if days is not None:
        newest = pc.max(events["ts"]).as_py()
        events = events.filter(pc.greater_equal(events["ts"], pd.Timestamp(newest) - pd.Timedelta(days=days)))
    frame = events.to_pandas()
    rng = np.random.default_rng(seed)
    if len(frame) > limit:
        frame = frame.iloc[np.sort(rng.choice(len(frame), limit, replace=False))]
    frame = frame.rename(columns={"ts": "event_timestamp"})
    frame["label"] = frame.pop("event_type").map(LABEL_GRADES).astype("int64")
    if negatives > 0:
        catalog = lake.read_catalog()
        items = np.asarray(
            catalog["item_id"] if catalog is not None else frame["item_id"].unique(), dtype=object
        )
        neg = frame.loc[frame.index.repeat(negatives), ["user_id", "event_timestamp"]].copy()
        neg["item_id"] = items[rng.integers(0, len(items), len(neg))]
        neg["label"] = 0
        frame = pd.concat([frame, neg], ignore_index=True)
    return frame.reset_index(drop=True)


def training_set_job(
    settings: Settings,
    out: Path | None = None,
    *,
    service: str = "ranking",
    days: int | None = None,
    limit: int = 200_000,
    negatives: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """Point-in-time join of lake labels with Feast features; written as Parquet for the models."""
    from feature_repo.store import training_set

    started = time.perf_counter()
    labels = label_frame(settings, days=days, limit=limit, negatives=negatives, seed=seed)
    joined = training_set(settings, labels, feature_service=service)
    path = out or settings.paths.features / "training" / f"{service}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    joined.to_parquet(path, index=False)
    feature_cols = [c for c in joined.columns if "__" in c]
    return {
        "rows": len(joined),
        "positives": int((joined["label"] > 0).sum()),
        "negatives": int((joined["label"] == 0).sum()),
        "features": len(feature_cols),
        "null_share": round(float(joined[feature_cols].isna().mean().mean()), 4) if feature_cols else None,
        "service": service,
        "path": str(path),
        "seconds": round(time.perf_counter() - started, 3),
    }
