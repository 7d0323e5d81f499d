"""The shopper-context contract end to end: the lake path and the online path give the same contexts.

One generated shop's older events arrive as files (batch ingestion → lake → the feature build's offline
``user_recent`` table → materialization into Redis), its newer events through Kafka (the `aisle ingest
stream` job: gate → lake → fold → push, seeded from what Redis holds). Then ``models.context.from_lake``
over the lake and ``models.context.from_online`` over Redis must agree for every shopper, Feast user
features included. Real broker, real Redis, real Feast; the last test stops Redis to check that an online
read degrades (slow server, then no server) instead of hanging or raising.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aisle.app.jobs import ingest
from aisle.app.services import embedded_services, services_down
from aisle.core.endpoints import read_state
from aisle.core.settings import Settings, load_settings
from feature_repo import materialization, store, tables
from feature_repo.compute.recent import write_user_recent
from ingestion.stream import stream_events
from ingestion.synthetic.shop import ShopConfig, generate_shop, write_events
from models.context import from_lake, from_online
from models.data import load_events
from models.features import snapshot_features

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore:fetch_arrow_table")]


def write_user_features(settings: Settings, users: list[str], stamp: datetime) -> None:
    """One contract snapshot of ``user_features`` (Spark would write it; values are planted)."""
    rows = []
    for k, user in enumerate(users):
        rows.append(
            {
                "user_id": user,
                "event_timestamp": stamp,
                **{
                    f"{kind}_{w}d": (k * w) % 7
                    for kind in ("views", "carts", "purchases")
                    for w in (1, 7, 30)
                },
                "days_since_last_purchase": None if k % 3 == 0 else float(k % 5),
                "avg_price_paid_30d": None if k % 3 == 0 else 10.0 + k,
                "purchase_rate_30d": (k % 4) / 10,
                "fav_category_30d": f"cat{k % 3}",
                "fav_brand_30d": None if k % 4 == 0 else f"brand{k % 2}",
                "snapshot_date": (stamp - timedelta(days=1)).date(),
            }
        )
    table = pa.Table.from_pylist(rows, schema=tables.USER_FEATURES_SCHEMA)
    root = tables.table_dir(settings.paths.features, tables.USER_FEATURES)
    pq.write_to_dataset(table, root, partition_cols=["snapshot_date"], coerce_timestamps="us")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, dict[str, Any]]]:
    work = tmp_path_factory.mktemp("context")
    settings = load_settings(
        home=work / "aisle",
        profile="embedded",
        redis_url=None,
        kafka_bootstrap=None,
        micro_batch_max_events=50,
    )
    shop = generate_shop(ShopConfig(users=600, items=60, days=14, seed=5))
    events = shop.events.sort_by([("ts", "ascending"), ("event_id", "ascending")])
    cut = events.num_rows * 6 // 10
    while cut < events.num_rows and events["ts"][cut] == events["ts"][cut - 1]:
        cut += 1  # the stream starts at a new instant
    pq.write_table(shop.catalog, work / "catalog.parquet")
    write_events(events.slice(0, cut), work / "history.parquet")
    with embedded_services(settings):
        try:
            files = ingest.batch(
                settings, {"sources": [str(work / "catalog.parquet"), str(work / "history.parquet")]}
            )
            assert files["accepted"] == cut, files
            users = sorted(set(events["user_id"].to_pylist()))
            first_day = events["ts"][0].as_py().replace(hour=0, minute=0, second=0, microsecond=0)
            write_user_features(settings, users[::2], first_day + timedelta(days=2))
            write_user_recent(settings.paths.lake, settings.paths.features)  # the feature build's step
            materialization.apply(settings)
            materialized = materialization.materialize(settings)
            assert materialized["views"]["user_recent"]["rows"] > 0
            produced = stream_events(settings, events.slice(cut))
            # bounded by the count produced; the idle bound only stops a run that went wrong
            expected = events.num_rows - cut
            streamed = ingest.stream(
                settings, {"max_events": expected, "idle_seconds": 30, "max_seconds": 240}
            )
            yield settings, {"events": events, "cut": cut, "produced": produced, "stream": streamed}
        finally:
            store.reset_store(settings)


def test_lake_and_online_paths_give_the_same_contexts(world: tuple[Settings, dict[str, Any]]) -> None:
    settings, info = world
    stream = info["stream"]
    assert stream["accepted"] == info["events"].num_rows - info["cut"] and stream["batches"] > 3
    assert stream["stream_features"]["failed_pushes"] == 0 and stream["stream_features"]["pushed_rows"] > 0

    lake_events = load_events(settings)
    assert len(lake_events) == info["events"].num_rows
    as_of = lake_events["ts"].max() + pd.Timedelta(microseconds=1)
    users = [*sorted(lake_events["user_id"].unique()), "never-seen"]
    features, _ = snapshot_features(settings, users, [], as_of)
    lake = from_lake(lake_events, as_of=as_of, user_features=features)
    online = from_online(settings, users, timeout_s=10.0)
    assert not online.degraded, online.reason

    differing = [u for u in users if lake.get(u) != online.contexts.get(u)]
    assert differing == [], (differing[:3], lake.get(differing[0]), online.contexts.get(differing[0]))

    # the comparison covers real content: history and stream, features, and a stranger
    contexts = [lake.get(u) for u in users]
    history_users = set(info["events"].slice(0, info["cut"])["user_id"].to_pylist())
    stream_users = set(info["events"].slice(info["cut"])["user_id"].to_pylist())
    both = history_users & stream_users
    assert len(both) >= 5, "the shop should have shoppers active in both halves"
    counts = lake_events.groupby("user_id").size()
    assert all(lake.get(u).counters.events == counts[u] for u in both)  # history + stream, once each
    assert sum(1 for c in contexts if c.recent) > 100
    assert sum(1 for c in contexts if c.features) > 100
    assert sum(1 for c in contexts if c.purchased) > 5
    assert not lake.get("never-seen").has_history and not online.contexts.get("never-seen").has_history

    q_lake, q_online = lake.queries(users), online.contexts.queries(users)
    assert q_lake.frame["recent_items"].tolist() == q_online.frame["recent_items"].tolist()
    assert q_lake.excluded == q_online.excluded and q_lake.purchased == q_online.purchased


def test_online_reads_degrade_when_redis_is_slow_or_down(world: tuple[Settings, dict[str, Any]]) -> None:
    settings, info = world
    users = sorted(set(info["events"]["user_id"].to_pylist()))[:20]
    pid = int(read_state(settings)["redis"]["pid"])
    os.kill(pid, signal.SIGSTOP)  # a hung server: connections open, nothing answers
    try:
        started = time.perf_counter()
        slow = from_online(settings, users, timeout_s=0.2)
        waited = time.perf_counter() - started
    finally:
        os.kill(pid, signal.SIGCONT)
    assert slow.degraded and "did not answer within 200 ms" in (slow.reason or "")
    assert waited < 1.5 and slow.contexts.get(users[0]).recent == ()

    recovered = from_online(settings, users, timeout_s=10.0)
    assert not recovered.degraded and any(recovered.contexts.get(u).recent for u in users)

    services_down(settings, kafka=False)
    started = time.perf_counter()
    down = from_online(settings, users, timeout_s=5.0)
    assert down.degraded and "not reachable" in (down.reason or "")
    assert time.perf_counter() - started < 5.0
    assert all(not down.contexts.get(u).has_history for u in users)
