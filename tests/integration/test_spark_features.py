"""The Spark feature jobs on a tiny lake whose every expected value is worked out by hand below.

Four users, four items (one missing from the catalog), a few days around D0 = 2026-03-01. Planted on
purpose: an event exactly at midnight and one a microsecond before it (window edges, no leakage), one
exactly 30 days before a snapshot and one a microsecond earlier, a purchase 40 days back (days since
last purchase must see the whole history, also in an incremental build), ties for the favourite
category and brand, zero-weight events (rating), an item outside the catalog and baskets without a
session. One Spark session serves the module.
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aisle.core.errors import BadInput
from aisle.core.schemas import CATALOG_SCHEMA, EVENT_SCHEMA, EVENT_WEIGHTS
from aisle.core.settings import Settings, load_settings
from feature_repo.tables import (
    ITEM_COOCCURRENCE,
    ITEM_FEATURES,
    SCHEMAS,
    TRENDING_HALF_LIFE_DAYS,
    TS,
    USER_CATEGORY,
    USER_FEATURES,
    USER_RECENT,
)
from ingestion.lake import EventLake

pytestmark = pytest.mark.integration

pyspark = pytest.importorskip("pyspark")

D0 = date(2026, 3, 1)
SNAPSHOT_TABLES = (USER_FEATURES, ITEM_FEATURES, USER_CATEGORY)


def at(day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    """A UTC instant ``day`` days after D0."""
    start = datetime(D0.year, D0.month, D0.day, tzinfo=UTC) + timedelta(days=day)
    return start + timedelta(hours=hour, minutes=minute, seconds=second, microseconds=micro)


def end_of(day: int) -> datetime:
    """event_timestamp of the snapshot of D0 + day."""
    return at(day + 1)


def days_between(later: datetime, earlier: datetime) -> float:
    return (later - earlier) / timedelta(days=1)


ELEC_PHONE = "Electronics>Phones>Smartphones"
CATALOG = [
    # item, category, brand, price, in_stock, created_at
    ("i1", ELEC_PHONE, "Acme", 100.0, True, at(-10)),
    ("i2", "Electronics>Audio>Headphones", "Beta", 50.0, True, at(-1, 12)),
    ("i3", "Home>Kitchen>Pans", "Cook", 20.0, False, at(-100)),
    # i4 is sold but missing from the catalog
]

# user, item, type, ts, session, value
EVENTS: list[tuple[str, str, str, datetime, str | None, float | None]] = [
    ("u3", "i3", "purchase", at(-40, 15), "s0", 20.0),  # > 30 days back: only days_since_last_purchase
    ("u3", "i2", "view", at(-27) - timedelta(microseconds=1), None, None),  # 1 µs outside u3's D0+2 window
    ("u3", "i2", "view", at(-27), None, None),  # exactly 30 days before u3's D0+2 snapshot: inside
    ("u1", "i1", "view", at(0, 10), "s1", None),
    ("u1", "i2", "view", at(0, 10, 5), "s1", None),
    ("u1", "i1", "add_to_cart", at(0, 10, 10), "s1", 100.0),
    ("u1", "i1", "purchase", at(0, 10, 20), "s1", 100.0),
    ("u2", "i1", "view", at(0, 11), "s4", None),
    ("u2", "i3", "view", at(0, 11, 1), "s4", None),
    ("u2", "i1", "purchase", at(0, 11, 2), "s4", 90.0),
    ("u2", "i3", "purchase", at(0, 11, 3), "s4", 20.0),
    ("u1", "i2", "view", at(1), "s2", None),  # exactly midnight: day D0+1, not in D0's snapshot
    ("u1", "i3", "view", at(1, 9), "s2", None),
    ("u1", "i3", "view", at(2) - timedelta(microseconds=1), "s2", None),  # last µs of D0+1
    ("u3", "i3", "view", at(2, 10), "s5", None),
    ("u3", "i1", "view", at(2, 10, 1), "s5", None),
    ("u3", "i1", "wishlist", at(2, 10, 2), "s5", None),
    ("u4", "i3", "rating", at(2, 16), None, 4.0),  # 4 stars: strong (weight 5); 4.0 is not a price
    ("u2", "i4", "view", at(3, 12), None, None),
    ("u2", "i2", "purchase", at(3, 12, 30), None, 50.0),
    ("u2", "i4", "purchase", at(3, 13), None, 10.0),
    ("u2", "i3", "rating", at(3, 14), None, 4.0),
    ("u3", "i1", "view", at(4, 10), "s7", None),
    ("u1", "i1", "view", at(5, 8), "s3", None),
]


def events_table(rows: list[tuple[str, str, str, datetime, str | None, float | None]]) -> pa.Table:
    cols = list(zip(*rows, strict=True))
    return pa.table(
        {
            "event_id": [f"e{i:03d}-{r[0]}-{r[3].isoformat()}" for i, r in enumerate(rows)],
            "event_type": list(cols[2]),
            "user_id": list(cols[0]),
            "item_id": list(cols[1]),
            "ts": pa.array(list(cols[3]), TS),
            "session_id": list(cols[4]),
            "value": pa.array(list(cols[5]), pa.float64()),
            "quantity": pa.array([1] * len(rows), pa.int32()),
            "device": ["web"] * len(rows),
            "country": ["DE"] * len(rows),
            "request_id": pa.nulls(len(rows), pa.string()),
        },
        schema=EVENT_SCHEMA,
    )


def catalog_table() -> pa.Table:
    cols = list(zip(*CATALOG, strict=True))
    return pa.table(
        {
            "item_id": list(cols[0]),
            "title": [f"item {i}" for i in cols[0]],
            "category": list(cols[1]),
            "brand": list(cols[2]),
            "price": list(cols[3]),
            "in_stock": list(cols[4]),
            "created_at": pa.array(list(cols[5]), TS),
            "description": [None] * len(CATALOG),
        },
        schema=CATALOG_SCHEMA,
    )


def make_settings(root: Path, events: list[Any] | None = None) -> Settings:
    settings = load_settings(home=root, profile="embedded", redis_url=None, kafka_bootstrap=None)
    lake = EventLake(settings.paths.lake)
    lake.write(events_table(EVENTS if events is None else events))
    lake.upsert_catalog(catalog_table())
    return settings


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from feature_repo.compute.session import spark_session

    session = spark_session(load_settings(home=tmp_path_factory.mktemp("spark-home")))
    yield session
    session.stop()


@pytest.fixture(scope="module")
def built(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict[str, Any]]:
    """A full build of the whole hand-made lake."""
    from feature_repo.compute.build import build_features

    settings = make_settings(tmp_path_factory.mktemp("full"))
    stages: list[str] = []
    summary = build_features(settings, progress=stages.append)
    assert stages == ["read", USER_FEATURES, ITEM_FEATURES, USER_CATEGORY, ITEM_COOCCURRENCE, USER_RECENT]
    return settings, summary


def test_user_recent_is_the_view_of_the_whole_lake(built: tuple[Settings, dict[str, Any]]) -> None:
    """The offline copy of the stream view: one row per shopper, exactly the view's definition."""
    import pyarrow.parquet as pq

    from feature_repo.user_recent import from_events

    settings, summary = built
    lake = EventLake(settings.paths.lake).read()
    written = pq.read_table(settings.paths.features / USER_RECENT)
    assert summary["tables"][USER_RECENT]["rows"] == written.num_rows == len(set(lake["user_id"].to_pylist()))
    assert written.to_pylist() == from_events(lake).to_pylist()


def test_python_workers_run_the_drivers_interpreter(spark: Any) -> None:
    """Spark must not pick up the machine's `python3` for its workers (issue #11)."""
    import sys

    seen = spark.sparkContext.parallelize(range(4), 2).map(lambda _: __import__("sys").executable).collect()
    assert set(seen) == {sys.executable}
    assert spark.sparkContext.pythonExec == sys.executable


def rows(settings: Settings, name: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    from feature_repo.compute.storage import read_table

    table = read_table(settings.paths.features, name).to_pylist()
    if name == ITEM_COOCCURRENCE:
        return {(r["item_id"],): r for r in table}
    if name == USER_CATEGORY:
        return {(r["user_id"], r["top_category"], r["snapshot_date"]): r for r in table}
    key = "user_id" if name == USER_FEATURES else "item_id"
    return {(r[key], r["snapshot_date"]): r for r in table}


def d(day: int) -> date:
    return D0 + timedelta(days=day)


def decay(snapshot_day: int, events: list[tuple[str, datetime]]) -> float:
    end = end_of(snapshot_day)
    return sum(
        EVENT_WEIGHTS[kind] * 0.5 ** (days_between(end, ts) / TRENDING_HALF_LIFE_DAYS) for kind, ts in events
    )


def assert_subset(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    for name, value in expected.items():
        got = actual[name]
        if isinstance(value, float):
            assert got == pytest.approx(value, rel=1e-12), name
        else:
            assert got == value, name


# --- the values, by hand ---------------------------------------------------------------------------


def test_user_features_by_hand(built: tuple[Settings, dict[str, Any]]) -> None:
    settings, _ = built
    users = rows(settings, USER_FEATURES)
    # snapshots exist only for the days a user was active
    assert sorted(k for k in users if k[0] == "u1") == [("u1", d(0)), ("u1", d(1)), ("u1", d(5))]
    assert sorted(k for k in users if k[0] == "u3") == [
        ("u3", d(-40)),
        ("u3", d(-28)),
        ("u3", d(-27)),
        ("u3", d(2)),
        ("u3", d(4)),
    ]
    u1_purchase = at(0, 10, 20)
    # D0: the midnight view of D0+1 is not in it; Electronics 4 events, Acme 3 of them
    assert_subset(
        users[("u1", d(0))],
        {
            "event_timestamp": end_of(0),
            "views_1d": 2,
            "views_7d": 2,
            "carts_1d": 1,
            "purchases_1d": 1,
            "purchases_30d": 1,
            "days_since_last_purchase": days_between(end_of(0), u1_purchase),
            "avg_price_paid_30d": 100.0,
            "purchase_rate_30d": 0.5,
            "fav_category_30d": "Electronics",
            "fav_brand_30d": "Acme",
        },
    )
    # D0+1: midnight view + two i3 views (the last µs of the day included); Home 2 < Electronics 5
    assert_subset(
        users[("u1", d(1))],
        {
            "event_timestamp": end_of(1),
            "views_1d": 3,
            "views_7d": 5,
            "carts_1d": 0,
            "carts_7d": 1,
            "purchases_1d": 0,
            "purchases_7d": 1,
            "days_since_last_purchase": days_between(end_of(1), u1_purchase),
            "avg_price_paid_30d": 100.0,
            "purchase_rate_30d": 1 / 5,
            "fav_category_30d": "Electronics",
            "fav_brand_30d": "Acme",
        },
    )
    assert_subset(
        users[("u1", d(5))],
        {"views_1d": 1, "views_7d": 6, "views_30d": 6, "purchases_7d": 1, "purchase_rate_30d": 1 / 6},
    )
    # u2 on D0: Electronics 2 = Home 2 and Acme 2 = Cook 2: ties go to the alphabetically first
    assert_subset(
        users[("u2", d(0))],
        {
            "views_1d": 2,
            "purchases_1d": 2,
            "avg_price_paid_30d": (90.0 + 20.0) / 2,
            "purchase_rate_30d": 1.0,
            "days_since_last_purchase": days_between(end_of(0), at(0, 11, 3)),
            "fav_category_30d": "Electronics",
            "fav_brand_30d": "Acme",
        },
    )
    # u2 on D0+3: Electronics 3 = Home 3 (the rating counts as an event), Cook 3 > Acme 2; the unknown
    # item's events count for views/purchases but for no category or brand
    assert_subset(
        users[("u2", d(3))],
        {
            "views_1d": 1,
            "views_30d": 3,
            "purchases_1d": 2,
            "purchases_30d": 4,
            "avg_price_paid_30d": (90.0 + 20.0 + 50.0 + 10.0) / 4,
            "purchase_rate_30d": 4 / 3,
            "days_since_last_purchase": days_between(end_of(3), at(3, 13)),
            "fav_category_30d": "Electronics",
            "fav_brand_30d": "Cook",
        },
    )
    # u3 on D0+2: the view at exactly T - 30 days is in, the one a µs earlier is out; no purchase in
    # 30 days (avg null, rate 0) but one 40 days back
    assert_subset(
        users[("u3", d(2))],
        {
            "views_1d": 2,
            "views_7d": 2,
            "views_30d": 3,
            "purchases_30d": 0,
            "days_since_last_purchase": days_between(end_of(2), at(-40, 15)),
            "purchase_rate_30d": 0.0,
            "fav_category_30d": "Electronics",
            "fav_brand_30d": "Acme",
        },
    )
    assert users[("u3", d(2))]["avg_price_paid_30d"] is None
    assert users[("u3", d(4))]["days_since_last_purchase"] == pytest.approx(
        days_between(end_of(4), at(-40, 15))
    )
    # u4 only rated: no views (rate 0, not a division by zero), never bought (null), the rating's
    # value is not a price
    assert_subset(
        users[("u4", d(2))],
        {"views_30d": 0, "purchase_rate_30d": 0.0, "fav_category_30d": "Home", "fav_brand_30d": "Cook"},
    )
    assert users[("u4", d(2))]["days_since_last_purchase"] is None
    assert users[("u4", d(2))]["avg_price_paid_30d"] is None


def test_item_features_by_hand(built: tuple[Settings, dict[str, Any]]) -> None:
    settings, _ = built
    items = rows(settings, ITEM_FEATURES)
    i1_day0 = [
        ("view", at(0, 10)),
        ("add_to_cart", at(0, 10, 10)),
        ("purchase", at(0, 10, 20)),
        ("view", at(0, 11)),
        ("purchase", at(0, 11, 2)),
    ]
    assert_subset(
        items[("i1", d(0))],
        {
            "event_timestamp": end_of(0),
            "views_1d": 2,
            "carts_1d": 1,
            "purchases_1d": 2,
            "conversion_rate_30d": 1.0,
            "trending_score": decay(0, i1_day0),
            "price": 100.0,
            "category": ELEC_PHONE,
            "top_category": "Electronics",
            "brand": "Acme",
            "in_stock": True,
            "age_days": 11.0,
        },
    )
    i1_day2 = [*i1_day0, ("view", at(2, 10, 1)), ("wishlist", at(2, 10, 2))]
    assert_subset(items[("i1", d(2))], {"views_1d": 1, "views_7d": 3, "trending_score": decay(2, i1_day2)})
    assert_subset(
        items[("i1", d(5))],
        {"views_1d": 1, "views_7d": 5, "purchases_7d": 2, "conversion_rate_30d": 2 / 5, "age_days": 16.0},
    )
    # i2 on D0 does not see the view at D0+1 00:00; created at noon the day before
    assert_subset(items[("i2", d(0))], {"views_1d": 1, "age_days": 1.5})
    assert_subset(items[("i2", d(1))], {"views_1d": 1, "views_7d": 2})
    # i3 on D0+1: the purchase 41 days back is outside every window and the trending sum
    i3_day1 = [
        ("view", at(0, 11, 1)),
        ("purchase", at(0, 11, 3)),
        ("view", at(1, 9)),
        ("view", at(2) - timedelta(microseconds=1)),
    ]
    assert_subset(
        items[("i3", d(1))],
        {
            "views_1d": 2,
            "views_7d": 3,
            "purchases_30d": 1,
            "conversion_rate_30d": 1 / 3,
            "trending_score": decay(1, i3_day1),
            "in_stock": False,
        },
    )
    # i4 is not in the catalog: counts, but no attributes
    i4 = items[("i4", d(3))]
    assert_subset(i4, {"views_1d": 1, "purchases_1d": 1, "conversion_rate_30d": 1.0})
    assert [i4[c] for c in ("price", "category", "top_category", "brand", "in_stock", "age_days")] == [
        None
    ] * 6
    assert ("i4", d(2)) not in items  # no events that day, no snapshot


def test_affinity_by_hand(built: tuple[Settings, dict[str, Any]]) -> None:
    settings, _ = built
    aff = {k: v["affinity_30d"] for k, v in rows(settings, USER_CATEGORY).items()}
    assert aff[("u1", "Electronics", d(0))] == pytest.approx(1.0)
    assert ("u1", "Home", d(0)) not in aff
    # D0+1: Electronics 1+1+3+5 + 1 (midnight view) = 11, Home 1+1 = 2, of 13
    assert aff[("u1", "Electronics", d(1))] == pytest.approx(11 / 13)
    assert aff[("u1", "Home", d(1))] == pytest.approx(2 / 13)
    # u2 on D0+3: 28 weighted (the 4-star rating of i3 is a strong interaction, weight 5), 6 of them on
    # the unknown item: shares sum to 22/28, not 1
    assert aff[("u2", "Electronics", d(3))] == pytest.approx((1 + 5 + 5) / 28)
    assert aff[("u2", "Home", d(3))] == pytest.approx((1 + 5 + 5) / 28)
    # u3 on D0+2: views i3 (Home 1), i1 (1), wishlist i1 (2), the edge view of i2 (1) of 5
    assert aff[("u3", "Electronics", d(2))] == pytest.approx(4 / 5)
    assert aff[("u3", "Home", d(2))] == pytest.approx(1 / 5)
    # u4 only rated i3 (Home) with 4 stars, a strong interaction: all of u4's affinity is Home
    assert {k: v for k, v in aff.items() if k[0] == "u4"} == {("u4", "Home", d(2)): pytest.approx(1.0)}


def test_cooccurrence_by_hand(built: tuple[Settings, dict[str, Any]]) -> None:
    settings, _ = built
    pairs = rows(settings, ITEM_COOCCURRENCE)
    assert sorted(pairs) == [("i1",), ("i2",), ("i3",), ("i4",)]
    # purchase baskets: s0 {i3}, s1 {i1}, s4 {i1, i3}, u2's day D0+3 without session {i2, i4}
    assert pairs[("i1",)]["bought_together"] == ["i3"]
    assert pairs[("i1",)]["bought_together_scores"] == pytest.approx([1 / math.sqrt(2 * 2)])
    assert pairs[("i2",)]["bought_together"] == ["i4"]
    assert pairs[("i4",)]["bought_together_scores"] == pytest.approx([1.0])
    # view baskets: s1 {i1, i2}, s2 {i2, i3}, s3 {i1}, s4 {i1, i3}, s5 {i3, i1}, s7 {i1}, u3's two days
    # {i2} and {i2}, u2's day {i4}: i1 in 5, i2 in 4, i3 in 3 baskets
    assert pairs[("i1",)]["viewed_together"] == ["i3", "i2"]
    assert pairs[("i1",)]["viewed_together_scores"] == pytest.approx([2 / math.sqrt(15), 1 / math.sqrt(20)])
    assert pairs[("i2",)]["viewed_together"] == ["i3", "i1"]
    assert pairs[("i2",)]["viewed_together_scores"] == pytest.approx([1 / math.sqrt(12), 1 / math.sqrt(20)])
    assert pairs[("i3",)]["viewed_together"] == ["i1", "i2"]
    assert pairs[("i4",)]["viewed_together"] == []  # partners of one kind only: empty list, not null
    newest = max(e[3] for e in EVENTS)
    assert {r["event_timestamp"] for r in pairs.values()} == {newest + timedelta(microseconds=1)}


def test_basket_cap_and_top_k(spark: Any) -> None:
    from feature_repo.compute.cooccurrence import baskets, pair_scores
    from feature_repo.compute.frames import enrich, spark_schema

    rows_ = [
        ("s", "a", at(0, 1)),
        ("s", "b", at(0, 2)),
        ("s", "a", at(0, 3)),
        ("s", "c", at(0, 4)),  # third distinct item: beyond a cap of 2
        ("t", "b", at(0, 5)),
        ("t", "d", at(0, 6)),
    ]
    events = spark.createDataFrame(
        [("view", "u", item, ts, session, None) for session, item, ts in rows_],
        "event_type string, user_id string, item_id string, ts timestamp, session_id string, value double",
    )
    catalog = spark.createDataFrame([], spark_schema(CATALOG_SCHEMA))
    found = baskets(enrich(events, catalog), "view", max_items=2)
    capped = {r["basket"]: [(x["item_id"], x["baskets"]) for x in r["items"]] for r in found.collect()}
    # first touched first; b is in two baskets
    assert capped == {"s:s": [("a", 1), ("b", 2)], "s:t": [("b", 2), ("d", 1)]}
    top = {r["item_id"]: (r["others"], r["scores"]) for r in pair_scores(found, top_k=1).collect()}
    # (a, b) and (b, d) both score 1 / sqrt(1 * 2): b keeps the lower id; c was capped out of s
    assert top == {
        "a": (["b"], [pytest.approx(1 / math.sqrt(2))]),
        "b": (["a"], [pytest.approx(1 / math.sqrt(2))]),
        "d": (["b"], [pytest.approx(1 / math.sqrt(2))]),
    }


# --- the contract --------------------------------------------------------------------------------------


def test_files_match_the_contract(built: tuple[Settings, dict[str, Any]]) -> None:
    settings, summary = built
    root = settings.paths.features
    for name, schema in SCHEMAS.items():
        files = sorted((root / name).rglob("*.parquet"))
        assert files, name
        on_disk = pq.read_schema(files[0])
        if "snapshot_date" in schema.names:
            # the partition column lives in the directory names
            expected = schema.remove(schema.get_field_index("snapshot_date"))
            assert {f.parent.name.split("=")[0] for f in files} == {"snapshot_date"}
            assert all(date.fromisoformat(f.parent.name.split("=")[1]) for f in files)
        else:
            expected = schema
        assert on_disk.equals(expected), f"{name}:\n{on_disk}\n!=\n{expected}"
        assert on_disk.field("event_timestamp").type == pa.timestamp("us", tz="UTC")
    assert summary["tables"][USER_FEATURES]["rows"] == len(rows(settings, USER_FEATURES))
    assert summary["snapshot_dates"] == {"first": d(-40).isoformat(), "last": d(5).isoformat(), "days": 46}
    assert summary["mode"] == "full" and summary["lake_events"] == len(EVENTS)


def test_duckdb_reads_the_tables_with_utc_timestamps(built: tuple[Settings, dict[str, Any]]) -> None:
    duckdb = pytest.importorskip("duckdb")
    settings, _ = built
    glob = settings.paths.features / USER_FEATURES / "**" / "*.parquet"
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    rel = con.sql(f"select * from read_parquet('{glob}', hive_partitioning = true)")
    types = dict(zip(rel.columns, [str(t) for t in rel.types], strict=True))
    assert types["event_timestamp"] == "TIMESTAMP WITH TIME ZONE"
    assert types["snapshot_date"] == "DATE"
    first = con.execute(
        f"select event_timestamp, snapshot_date from read_parquet('{glob}', hive_partitioning = true) "
        "where user_id = 'u1' order by event_timestamp limit 1"
    ).fetchall()[0]
    assert first == (end_of(0), d(0))


# --- builds: incremental, idempotent, empty --------------------------------------------------------------


def assert_same_tables(a: Settings, b: Settings) -> None:
    for name in SCHEMAS:
        left, right = rows(a, name), rows(b, name)
        assert left.keys() == right.keys(), name
        for key, row in left.items():
            other = right[key]
            for col, value in row.items():
                floats = isinstance(value, list) and value and isinstance(value[0], float)
                if isinstance(value, float) or floats:
                    assert other[col] == pytest.approx(value, rel=1e-12), (name, key, col)
                else:
                    assert other[col] == value, (name, key, col)


def test_incremental_build_equals_full_build_and_is_idempotent(
    built: tuple[Settings, dict[str, Any]], tmp_path: Path
) -> None:
    from feature_repo.compute.build import build_features

    full, _ = built
    since = d(3)
    before = [e for e in EVENTS if e[3] < at(3)]
    settings = make_settings(tmp_path / "incremental", before)
    build_features(settings)  # yesterday's build, before the newest days arrived
    early = rows(settings, USER_FEATURES)
    EventLake(settings.paths.lake).write(events_table([e for e in EVENTS if e[3] >= at(3)]))

    summary = build_features(settings, since=since)
    assert summary["mode"] == "incremental" and summary["since"] == since.isoformat()
    assert summary["snapshot_dates"] == {"first": since.isoformat(), "last": d(5).isoformat(), "days": 3}
    assert summary["tables"][USER_FEATURES]["rows"] == len(
        [k for k in rows(full, USER_FEATURES) if k[1] >= since]
    )
    # u3's purchase 44 days back is older than the events this build read: it comes from the history
    u3 = rows(settings, USER_FEATURES)[("u3", d(4))]
    assert u3["days_since_last_purchase"] == pytest.approx(days_between(end_of(4), at(-40, 15)))
    assert_same_tables(settings, full)
    # partitions before ``since`` were left as they were
    assert {k: v for k, v in rows(settings, USER_FEATURES).items() if k[1] < since} == {
        k: v for k, v in early.items() if k[1] < since
    }

    again = build_features(settings, since=since)
    assert_same_tables(settings, full)
    assert again["tables"] == summary["tables"]


def test_empty_lake_is_bad_input(tmp_path: Path) -> None:
    from feature_repo.compute.build import build_features

    settings = load_settings(home=tmp_path / "empty")
    with pytest.raises(BadInput, match="the event lake is empty; run `aisle ingest` first"):
        build_features(settings)


def test_missing_java_is_a_clear_error(tmp_path: Path) -> None:
    """A fresh process (no JVM yet) with a JAVA_HOME that holds no Java."""
    code = (
        "from aisle.core.errors import AisleError\n"
        "from aisle.core.settings import load_settings\n"
        "from feature_repo.compute.session import spark_session\n"
        "try:\n"
        f"    spark_session(load_settings(home={str(tmp_path)!r}))\n"
        "except AisleError as exc:\n"
        "    print('AisleError:', exc)\n"
    )
    env = {"JAVA_HOME": str(tmp_path / "no-java"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert "AisleError: could not start Spark" in out.stdout, out.stdout + out.stderr
    assert "Java 17" in out.stdout
