"""Feature store figures on the embedded Redis.

1. Materialization rows/s of 100k item-feature rows through Feast, against raw pipelined redis-py writes of
   the very same hashes (same keys, same bytes) in the same run.
2. Online read latency p50/p99: one user; one user + 100 items (what a ranking request needs); a raw
   HGETALL of one key as the floor.
3. Push latency of stream features (1 row, 500 rows).
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).parent))
from _common import report

from aisle.app.services import embedded_services, redis_url
from aisle.core.settings import load_settings
from feature_repo import materialization, online, tables
from feature_repo.user_recent import fold_event, to_table

N_ITEMS = 100_000
N_USERS = 1_000


def contract_table(schema: pa.Schema, key: str, n: int, rng: np.random.Generator) -> pa.Table:
    """Random rows that satisfy a contract schema (one snapshot)."""
    ts, day = datetime(2026, 3, 2, tzinfo=UTC), date(2026, 3, 1)
    columns: dict[str, object] = {}
    for f in schema:
        if f.name == key:
            columns[f.name] = [f"{key[:4]}{i:06d}" for i in range(n)]
        elif f.name == "event_timestamp":
            columns[f.name] = pa.array([ts] * n, tables.TS)
        elif f.name == "snapshot_date":
            columns[f.name] = pa.array([day] * n, pa.date32())
        elif f.type == pa.int64():
            columns[f.name] = rng.integers(0, 1000, n)
        elif f.type == pa.float64():
            columns[f.name] = rng.random(n)
        elif f.type == pa.bool_():
            columns[f.name] = rng.random(n) > 0.1
        else:
            columns[f.name] = [f"{f.name}-{i % 500}" for i in range(n)]
    return pa.table(columns, schema=schema)


def latency(fn: Callable[[], object], n: int) -> dict[str, float]:
    for _ in range(min(50, n)):
        fn()
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return {
        "p50_ms": round(float(np.percentile(samples, 50)), 3),
        "p99_ms": round(float(np.percentile(samples, 99)), 3),
    }


def main() -> None:
    import redis

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(home=Path(tmp), profile="embedded", redis_url=None, kafka_bootstrap=None)
        for name, key, n in (
            (tables.ITEM_FEATURES, "item_id", N_ITEMS),
            (tables.USER_FEATURES, "user_id", N_USERS),
        ):
            pq.write_to_dataset(
                contract_table(tables.SCHEMAS[name], key, n, rng),
                tables.table_dir(settings.paths.features, name),
                partition_cols=["snapshot_date"],
                coerce_timestamps="us",
            )
        with embedded_services(settings, kafka=False):
            materialization.apply(settings)
            summary = materialization.materialize(settings)
            view = summary["views"][tables.ITEM_FEATURES]

            url = redis_url(settings)
            client = redis.Redis.from_url(url)
            keys = [k for k in client.scan_iter(count=10_000) if not k.startswith(b"aisle:")]
            pipe = client.pipeline(transaction=False)
            for k in keys:
                pipe.hgetall(k)
            hashes = pipe.execute()
            target = redis.Redis.from_url(url.rsplit("/", 1)[0] + "/1")  # same server, another db
            t = time.perf_counter()
            pipe = target.pipeline(transaction=False)
            for i, (k, h) in enumerate(zip(keys, hashes, strict=True)):
                pipe.hset(k, mapping=h)
                if i % 10_000 == 9_999:
                    pipe.execute()
            pipe.execute()
            raw_s = time.perf_counter() - t
            report(
                "materialize",
                item_rows=view["rows"],
                feast_s=view["seconds"],
                feast_rows_per_s=round(view["rows"] / view["seconds"]),
                raw_pipelined_hashes=len(keys),
                raw_s=round(raw_s, 3),
                raw_rows_per_s=round(len(keys) / raw_s),
                feast_over_raw=round(view["seconds"] / raw_s, 1),
            )

            items = [f"item{i:06d}" for i in rng.choice(N_ITEMS, 100, replace=False)]
            report(
                "online_read",
                one_user=latency(lambda: online.online_features(settings, "user000007"), 2000),
                one_user_100_items=latency(
                    lambda: online.online_features(settings, "user000007", items), 500
                ),
                raw_hgetall_one_key=latency(lambda: client.hgetall(keys[0]), 2000),
            )

            now = datetime.now(UTC)
            state = fold_event(fold_event(None, "view", "a", now, "s"), "view", "b", now, "s")
            one = to_table({"user000007": state}).to_pandas()
            many = pd.concat([one] * 500, ignore_index=True)
            many["user_id"] = [f"user{i:06d}" for i in range(500)]

            def push(frame: pd.DataFrame) -> None:
                frame["event_timestamp"] = datetime.now(UTC)
                online.push_user_recent(settings, frame)

            report("push", one_row=latency(lambda: push(one), 300), rows_500=latency(lambda: push(many), 40))


if __name__ == "__main__":
    main()
