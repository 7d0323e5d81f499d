"""The Feast repo against a real Redis: contract tables in, the same values out online and offline.

Tables are small contract-conforming Parquet written here with pyarrow (hive-partitioned snapshots,
like the Spark jobs write them), so this file needs neither Spark nor the lake. Each Redis is an
embedded one in a private AISLE_HOME; nothing touches the developer's var/ or a machine-wide Redis.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import redis as redis_py
import yaml

from aisle.app.services import embedded_services, redis_url, services_down, services_up
from aisle.core.errors import BadInput, ServiceUnavailable
from aisle.core.settings import Settings, load_settings
from feature_repo import config as feast_config
from feature_repo import materialization, tables, training_sets
from feature_repo import online as feast_online
from feature_repo import store as feast_store

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore:fetch_arrow_table")]

DAY0 = date(2024, 3, 1)
DAYS = 3
USERS = [f"u{i}" for i in range(5)]
ITEMS = [f"i{i}" for i in range(8)]


def stamp(day: date) -> datetime:
    """Snapshots are stamped at the end of their day (next midnight, UTC)."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)


def settings_for(home: Path) -> Settings:
    return load_settings(home=home, profile="embedded", redis_url=None, kafka_bootstrap=None)


def write_table(settings: Settings, name: str, rows: list[dict[str, Any]], tag: str = "0") -> None:
    schema = tables.SCHEMAS.get(name) or tables.USER_RECENT_SCHEMA
    table = pa.Table.from_pylist(rows, schema=schema)
    root = tables.table_dir(settings.paths.features, name)
    if "snapshot_date" in schema.names:  # like Spark: partition column in the path, not in the file
        pq.write_to_dataset(
            table,
            root,
            partition_cols=["snapshot_date"],
            basename_template=f"part-{tag}-{{i}}.parquet",
            coerce_timestamps="us",
        )
    else:
        root.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, root / f"part-{tag}.parquet", coerce_timestamps="us")
    (root / "_SUCCESS").touch()


def user_row(user: str, day: date, k: int) -> dict[str, Any]:
    n = (k + 1) * (day - DAY0).days + k
    return {
        "user_id": user,
        "event_timestamp": stamp(day),
        "views_1d": n,
        "views_7d": 2 * n,
        "views_30d": 3 * n,
        "carts_1d": n % 3,
        "carts_7d": n % 5,
        "carts_30d": n % 7,
        "purchases_1d": 0,
        "purchases_7d": n % 2,
        "purchases_30d": n % 4,
        "days_since_last_purchase": None if k == 0 else float(n) / 2,  # u0 never bought
        "avg_price_paid_30d": None if k == 0 else 10.0 + n,
        "purchase_rate_30d": (n % 4) / (3 * n) if n else 0.0,
        "fav_category_30d": f"cat{n % 3}",
        "fav_brand_30d": f"brand{n % 2}",
        "snapshot_date": day,
    }


def item_row(item: str, day: date, k: int) -> dict[str, Any]:
    n = 10 * (day - DAY0).days + k
    return {
        "item_id": item,
        "event_timestamp": stamp(day),
        "views_1d": n,
        "views_7d": n + 1,
        "views_30d": n + 2,
        "carts_1d": 0,
        "carts_7d": 1,
        "carts_30d": 2,
        "purchases_1d": 0,
        "purchases_7d": 0,
        "purchases_30d": 1,
        "conversion_rate_30d": 1 / (n + 2),
        "trending_score": 0.5 * n,
        "price": 9.99 + k,
        "category": f"C{k % 2}>Sub{k}",
        "top_category": f"C{k % 2}",
        "brand": f"brand{k % 3}",
        "in_stock": k % 4 != 0,
        "age_days": None if k == 1 else float(30 + n),
        "snapshot_date": day,
    }


def write_contract_tables(settings: Settings) -> None:
    days = [DAY0 + timedelta(days=d) for d in range(DAYS)]
    write_table(
        settings, tables.USER_FEATURES, [user_row(u, d, k) for d in days for k, u in enumerate(USERS)]
    )
    write_table(
        settings, tables.ITEM_FEATURES, [item_row(i, d, k) for d in days for k, i in enumerate(ITEMS)]
    )
    write_table(
        settings,
        tables.USER_CATEGORY,
        [
            {
                "user_id": u,
                "top_category": c,
                "event_timestamp": stamp(d),
                "affinity_30d": 0.25 * (k + 1) if c == "C0" else 1 - 0.25 * (k + 1),
                "snapshot_date": d,
            }
            for d in days
            for k, u in enumerate(USERS[:3])
            for c in ("C0", "C1")
        ],
    )
    built = stamp(days[-1])
    write_table(
        settings,
        tables.ITEM_COOCCURRENCE,
        [
            {
                "item_id": item,
                "event_timestamp": built,
                "bought_together": [ITEMS[(k + 1) % 8], ITEMS[(k + 2) % 8]],
                "bought_together_scores": [0.75, 0.5 / (k + 1)],
                "viewed_together": [] if k == 0 else [ITEMS[(k + 3) % 8]],
                "viewed_together_scores": [] if k == 0 else [0.125],
            }
            for k, item in enumerate(ITEMS)
        ],
    )


def latest_offline_row(settings: Settings, name: str, key: str, value: str) -> dict[str, Any]:
    frame = pq.read_table(tables.table_dir(settings.paths.features, name)).to_pandas()
    rows = frame[frame[key] == value].sort_values("event_timestamp")
    return rows.iloc[-1].to_dict()


def same(a: Any, b: Any) -> bool:
    """Equality where null, None and NaN are one thing (pandas turns nulls into NaN)."""

    def null(x: Any) -> bool:
        return x is None or (isinstance(x, float) and math.isnan(x))

    if null(a) or null(b):
        return null(a) and null(b)
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b))
    return bool(a == b)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, dict[str, Any]]]:
    """One home with contract tables, a real Redis, the repo applied and materialized once."""
    settings = settings_for(tmp_path_factory.mktemp("feast") / "home")
    write_contract_tables(settings)
    with embedded_services(settings, kafka=False):
        materialization.apply(settings)
        summary = materialization.materialize(settings)
        try:
            yield settings, summary
        finally:
            feast_store.reset_store(settings)


def test_rendered_yaml_points_at_the_running_redis(loaded: tuple[Settings, dict[str, Any]]) -> None:
    settings, _ = loaded
    path = feast_config.render_feature_store_yaml(settings)
    assert path == settings.paths.feast / "feature_store.yaml"
    config = yaml.safe_load(path.read_text())
    url = redis_url(settings)  # redis://127.0.0.1:PORT/0
    host_port = url.removeprefix("redis://").rsplit("/", 1)[0]
    assert config["online_store"]["type"] == "redis"
    assert config["online_store"]["connection_string"].split(",")[:2] == [host_port, "db=0"]
    assert config["offline_store"] == {"type": "duckdb"}
    assert config["project"] == "aisle" and config["provider"] == "local"
    assert config["registry"]["registry_type"] == "file"
    assert Path(config["registry"]["path"]) == settings.paths.feast / "registry.db"
    assert config["entity_key_serialization_version"] == 3


def test_sql_registry_and_url_conversion(tmp_path: Path) -> None:
    settings = load_settings(
        home=tmp_path / "home", redis_url="rediss://:s3cret@redis.example:6380/2",
        feast_registry_url="postgresql://feast@db:5432/feast",
    )  # fmt: skip
    config = yaml.safe_load(feast_config.render_feature_store_yaml(settings).read_text())
    assert config["registry"]["registry_type"] == "sql"
    assert config["registry"]["path"].endswith("@db:5432/feast")
    parts = config["online_store"]["connection_string"].split(",")
    assert parts[:2] == ["redis.example:6380", "db=2"] and {"ssl=true", "password=s3cret"} <= set(parts)
    with pytest.raises(BadInput, match="redis://"):
        feast_config.feast_connection_string("unix:///tmp/redis.sock")
    with pytest.raises(BadInput, match="cannot carry"):
        feast_config.feast_connection_string("redis://:a,b@host:1/0")


def test_materialize_writes_the_latest_row_of_every_entity(loaded: tuple[Settings, dict[str, Any]]) -> None:
    _, summary = loaded
    views = summary["views"]
    assert views["user_features"]["rows"] == len(USERS)
    assert views["item_features"]["rows"] == len(ITEMS)
    assert views["user_category_affinity"]["rows"] == 3 * 2
    assert views["item_cooccurrence"]["rows"] == len(ITEMS)
    assert views["user_recent"]["rows"] == 0  # push-only: no offline files
    assert all(v.get("full_reload", True) for v in views.values())
    assert summary["rows"] == len(USERS) + len(ITEMS) + 6 + len(ITEMS)


def test_online_user_features_equal_the_latest_offline_row(loaded: tuple[Settings, dict[str, Any]]) -> None:
    settings, _ = loaded
    for user in ("u0", "u3"):
        online = feast_online.online_features(settings, user)["user"]
        offline = latest_offline_row(settings, tables.USER_FEATURES, "user_id", user)
        features = [f.name for f in tables.USER_FEATURES_SCHEMA][2:-1]
        mismatched = {
            f: (online[f"user_features__{f}"], offline[f])
            for f in features
            if not same(online[f"user_features__{f}"], offline[f])
        }
        assert mismatched == {}
        assert (
            online["user_features__views_1d"]
            == user_row(user, DAY0 + timedelta(days=DAYS - 1), int(user[1:]))["views_1d"]
        )


def test_items_and_list_features_round_trip(loaded: tuple[Settings, dict[str, Any]]) -> None:
    settings, _ = loaded
    result = feast_online.online_features(settings, "u1", ["i1", "i5", "no-such-item"])
    items = result["items"]
    assert list(items) == ["i1", "i5", "no-such-item"]
    offline = latest_offline_row(settings, tables.ITEM_FEATURES, "item_id", "i5")
    assert same(items["i5"]["item_features__trending_score"], offline["trending_score"])
    assert (
        items["i5"]["item_features__category"] == "C1>Sub5" and items["i5"]["item_features__in_stock"] is True
    )
    assert items["i1"]["item_features__age_days"] is None
    assert all(v is None for k, v in items["no-such-item"].items() if k != "item_id")

    store = feast_store.get_store(settings)
    refs = [
        f"item_cooccurrence:{c}" for c in ("bought_together", "bought_together_scores", "viewed_together")
    ]
    got = store.get_online_features(refs, [{"item_id": "i2"}, {"item_id": "i0"}]).to_dict()
    assert got["bought_together"] == [["i3", "i4"], ["i1", "i2"]]
    assert got["bought_together_scores"] == [[0.75, 0.5 / 3], [0.75, 0.5]]
    assert got["viewed_together"][0] == ["i5"] and got["viewed_together"][1] in ([], None)


def test_pushed_user_recent_is_visible_at_once_and_older_pushes_lose(
    loaded: tuple[Settings, dict[str, Any]],
) -> None:
    settings, _ = loaded
    now = datetime.now(UTC)

    def recent(ts: datetime, viewed: list[str], session_events: int) -> pd.DataFrame:
        row = {
            "user_id": "u2",
            "event_timestamp": ts,
            "last_event_us": int(ts.timestamp() * 1_000_000),
            "recent_items": viewed,
            "recent_types": ["view"] * len(viewed),
            "recent_ts_us": [int(ts.timestamp() * 1_000_000)] * len(viewed),
            "seen_items": viewed,
            "purchased_items": ["i1"],
            "events_total": session_events,
            "views_total": len(viewed),
            "carts_total": 1,
            "purchases_total": 1,
            "session_id": "s-42",
            "session_events": session_events,
            "session_views": len(viewed),
            "session_carts": 1,
        }
        return pd.DataFrame([row])

    feast_online.push_user_recent(settings, recent(now, ["i7", "i3"], 3))
    user = feast_online.online_features(settings, "u2")["user"]  # no wait, no retry: visible immediately
    assert user["user_recent__recent_items"] == ["i7", "i3"]
    assert user["user_recent__purchased_items"] == ["i1"]
    assert user["user_recent__session_events"] == 3 and user["user_recent__session_id"] == "s-42"
    assert user["user_features__views_1d"] is not None  # batch features of the same user intact

    feast_online.push_user_recent(settings, recent(now - timedelta(seconds=5), ["i0"], 1))  # replayed, older
    assert feast_online.online_features(settings, "u2")["user"]["user_recent__recent_items"] == ["i7", "i3"]
    with pytest.raises(BadInput, match="session_id"):
        feast_online.push_user_recent(settings, recent(now, [], 0).drop(columns=["session_id"]))


def test_direct_read_returns_exactly_what_feast_reads(loaded: tuple[Settings, dict[str, Any]]) -> None:
    """Serving reads a shopper's hash straight from Redis (one pipelined HMGET); on materialized batch
    features, a pushed user_recent row and shoppers Redis does not know, it equals Feast's online read."""
    settings, _ = loaded
    now = datetime.now(UTC)
    us = int(now.timestamp() * 1_000_000)
    pushed = {
        "user_id": "u4",
        "event_timestamp": now,
        "last_event_us": us,
        "recent_items": ["i2", "i6", "i0"],
        "recent_types": ["view", "add_to_cart", "purchase"],
        "recent_ts_us": [us, us - 5, us - 9],
        "seen_items": ["i2", "i6", "i0", "i5"],
        "purchased_items": ["i0"],
        "events_total": 9,
        "views_total": 5,
        "carts_total": 2,
        "purchases_total": 1,
        "session_id": None,
        "session_events": 0,
        "session_views": 0,
        "session_carts": 0,
    }
    feast_online.push_user_recent(settings, pd.DataFrame([pushed]))
    users = [*USERS, "nobody", ""]
    direct = feast_online.online_users(settings, users, timeout_s=1.0)
    reference = feast_online.feast_online_users(settings, users)
    assert set(direct) == set(reference) == set(users)
    for user in users:
        assert set(direct[user]) == set(reference[user]), user
        for name, value in reference[user].items():
            got = direct[user][name]
            same = got == value or (isinstance(value, float) and math.isnan(value) and math.isnan(got))
            assert same and type(got) is type(value), (user, name, got, value)
    assert direct["u4"]["user_recent__recent_items"] == ["i2", "i6", "i0"]
    assert direct["u4"]["user_recent__session_id"] is None
    assert direct["u1"]["user_features__views_1d"] is not None
    assert all(v is None for v in direct["nobody"].values())


def test_point_in_time_join_never_uses_a_later_row(loaded: tuple[Settings, dict[str, Any]]) -> None:
    settings, _ = loaded
    first, second = DAY0, DAY0 + timedelta(days=1)
    label_at = stamp(first) + timedelta(hours=6)  # between the two snapshots of u4
    entity = pd.DataFrame(
        {
            "user_id": ["u4", "u4", "u4", "u4"],
            "item_id": ["i2", "i2", "i2", "i3"],
            "event_timestamp": [
                label_at,
                stamp(second),  # exactly at a snapshot: that snapshot counts (it holds only earlier events)
                stamp(first) - timedelta(microseconds=1),  # before any snapshot
                stamp(second) + timedelta(days=40),  # beyond the 30-day TTL of every snapshot
            ],
            "label": [1, 0, 1, 0],
        }
    )
    frame = training_sets.training_set(settings, entity).sort_values("event_timestamp").reset_index(drop=True)
    by_time = {row["event_timestamp"]: row for row in frame.to_dict("records")}
    planted_later = user_row("u4", second, 4)["views_1d"]
    earlier = user_row("u4", first, 4)["views_1d"]
    assert planted_later != earlier
    assert by_time[pd.Timestamp(label_at)]["user_features__views_1d"] == earlier
    assert by_time[pd.Timestamp(stamp(second))]["user_features__views_1d"] == planted_later
    assert same(
        by_time[pd.Timestamp(stamp(first) - timedelta(microseconds=1))]["user_features__views_1d"], None
    )
    assert same(by_time[pd.Timestamp(stamp(second) + timedelta(days=40))]["user_features__views_1d"], None)
    assert by_time[pd.Timestamp(label_at)]["item_features__views_1d"] == item_row("i2", first, 2)["views_1d"]
    assert list(frame["label"].sort_values()) == [0, 0, 1, 1]
    assert frame.attrs["missing_views"] == []  # ranking reads no stream view

    retrieval = training_sets.training_set(
        settings, entity.drop(columns=["item_id"]), feature_service="retrieval"
    )
    assert not any(c.startswith("item_features__") for c in retrieval.columns)
    # the stream view has no offline copy here: null columns, named in attrs, same layout as with data
    assert retrieval.attrs["missing_views"] == ["user_recent"]
    assert retrieval["user_recent__recent_items"].isna().all()
    with pytest.raises(BadInput, match="item_id"):
        training_sets.training_set(settings, entity.drop(columns=["item_id"]))


def test_incremental_run_writes_only_new_snapshots_and_apply_keeps_the_watermark(
    loaded: tuple[Settings, dict[str, Any]],
) -> None:
    settings, _ = loaded
    materialization.apply(settings)  # re-applying must not reset what was materialized
    again = materialization.materialize(settings)
    assert again["rows"] == 0
    day = DAY0 + timedelta(days=DAYS)
    write_table(settings, tables.USER_FEATURES, [user_row("u1", day, 1) | {"views_1d": 999}], tag="late")
    later = materialization.materialize(settings)
    assert later["views"]["user_features"]["rows"] == 1 and later["rows"] == 1
    assert later["views"]["user_features"]["full_reload"] is False
    assert feast_online.online_features(settings, "u1")["user"]["user_features__views_1d"] == 999


def test_redis_down_is_a_clear_error_and_a_rerun_writes_everything(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "home")
    write_contract_tables(settings)
    port = int(services_up(settings, kafka=False)["redis"]["url"].rsplit(":", 1)[1].split("/")[0])
    try:
        materialization.apply(settings)
        services_down(settings, kafka=False)
        with pytest.raises(ServiceUnavailable, match=r"Redis at redis://127\.0\.0\.1:\d+/0 is not reachable"):
            materialization.materialize(settings)
        with pytest.raises(ServiceUnavailable, match="is not reachable"):
            feast_online.online_features(settings, "u1")

        services_up(settings, kafka=False, redis_port=port)
        summary = materialization.materialize(settings)  # nothing was recorded by the failed run
        assert summary["views"]["user_features"]["rows"] == len(USERS)
        assert summary["rows"] == len(USERS) + 2 * len(ITEMS) + 6
        assert feast_online.online_features(settings, "u3")["user"]["user_features__views_1d"] is not None

        # A Redis that lost its data (restart without persistence) is reloaded in full, though the
        # registry says everything was materialized already.
        redis_py.Redis.from_url(redis_url(settings)).flushdb()
        assert feast_online.online_features(settings, "u3")["user"]["user_features__views_1d"] is None
        reload = materialization.materialize(settings)
        assert reload["rows"] == summary["rows"]
        assert feast_online.online_features(settings, "u3")["user"]["user_features__views_1d"] is not None
    finally:
        services_down(settings, kafka=False)
        feast_store.reset_store(settings)
