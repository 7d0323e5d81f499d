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
    from ingestion.stream import consume_stream, produce_messages, stream_file

    events = pq.read_table(shop_dir / "events.parquet").sort_by("ts")
    cut = int(events.num_rows * (1.0 - stream_fraction))
    history = settings.paths.raw / "history" / "events-history.parquet"
    history.parent.mkdir(parents=True, exist_ok=True)
    write_events(events.slice(0, cut), history)
    batch = ingest_batch(settings, [shop_dir / "catalog.parquet", shop_dir / "users.parquet", history])
    produced = stream_file(settings, shop_dir / "events.parquet", offset=cut)
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
