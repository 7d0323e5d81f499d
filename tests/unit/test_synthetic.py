"""The synthetic shop must carry the structure models are supposed to learn."""

from datetime import UTC, datetime

import numpy as np
import pyarrow.compute as pc
import pytest

from aisle.core.errors import BadInput
from aisle.core.schemas import EVENT_SCHEMA, EVENT_TYPES
from ingestion.synthetic.shop import Shop, ShopConfig, generate_shop

CFG = ShopConfig(users=3000, items=600, days=42, seed=7)


@pytest.fixture(scope="module")
def shop() -> Shop:
    return generate_shop(CFG)


def test_schema_and_basic_invariants(shop: Shop) -> None:
    ev = shop.events
    assert ev.schema.equals(EVENT_SCHEMA, check_metadata=False)
    assert set(pc.unique(ev["event_type"]).to_pylist()) <= set(EVENT_TYPES)
    assert len(pc.unique(ev["event_id"])) == ev.num_rows
    assert pc.all(pc.is_in(ev["item_id"], shop.catalog["item_id"])).as_py()
    assert pc.all(pc.is_in(ev["user_id"], shop.users["user_id"])).as_py()
    start = CFG.start_dt
    end = datetime.fromtimestamp(start.timestamp() + CFG.days * 86400, UTC)
    assert pc.min(ev["ts"]).as_py() >= start
    assert pc.max(ev["ts"]).as_py() < end
    ratings = ev.filter(pc.equal(ev["event_type"], "rating"))["value"].to_numpy()
    assert ratings.size > 0 and set(np.unique(ratings)) <= {1.0, 2.0, 3.0, 4.0, 5.0}


def test_nothing_happens_before_it_exists(shop: Shop) -> None:
    ev = shop.events.to_pandas()
    item_created = shop.catalog.to_pandas().set_index("item_id")["created_at"]
    user_created = shop.users.to_pandas().set_index("user_id")["created_at"]
    assert (ev["ts"].values >= item_created.loc[ev["item_id"]].values).all()
    assert (ev["ts"].values >= user_created.loc[ev["user_id"]].values).all()


def test_deterministic_for_a_seed() -> None:
    small = ShopConfig(users=300, items=80, days=10, seed=3)
    a, b = generate_shop(small), generate_shop(small)
    assert a.events.equals(b.events) and a.catalog.equals(b.catalog)
    c = generate_shop(ShopConfig(users=300, items=80, days=10, seed=4))
    assert not a.events.equals(c.events)


def test_funnel_rates_look_like_a_real_shop(shop: Shop) -> None:
    share = {k: v / shop.events.num_rows for k, v in shop.summary()["events_by_type"].items()}  # type: ignore[union-attr]
    assert share["view"] > 0.9
    assert 0.01 < share["add_to_cart"] < 0.05
    assert 0.003 < share["purchase"] < share["add_to_cart"]


def test_popularity_is_long_tailed_and_activity_heavy_tailed(shop: Shop) -> None:
    ev = shop.events.to_pandas()
    item_counts = ev["item_id"].value_counts().to_numpy()
    top = item_counts[: max(1, len(item_counts) // 20)].sum() / item_counts.sum()
    assert top > 0.25, f"top 5% of items get only {top:.0%} of events"
    per_user = ev.groupby("user_id").size()
    assert per_user.median() < per_user.mean() / 1.3
    assert per_user.max() > 10 * per_user.median()


def test_purchases_follow_latent_taste_far_above_chance(shop: Shop) -> None:
    ev = shop.events.to_pandas()
    buys = ev[ev["event_type"] == "purchase"]
    u = buys["user_id"].str[1:].astype(int).to_numpy()
    i = buys["item_id"].str[1:].astype(int).to_numpy()
    taste = shop.latent["taste_top"]
    item_top = shop.latent["item_top"]
    observed = taste[u, item_top[i]].mean()
    shuffled = taste[np.random.default_rng(0).permutation(u), item_top[i]].mean()
    assert observed > 2.5 * shuffled, (observed, shuffled)


def test_companions_are_bought_together(shop: Shop) -> None:
    ev = shop.events.to_pandas()
    buys = ev[ev["event_type"] == "purchase"].dropna(subset=["session_id"])
    item_leaf = shop.latent["item_leaf"]
    comp = shop.latent["companion_leaf"]
    leaves = buys.assign(leaf=item_leaf[buys["item_id"].str[1:].astype(int)])
    baskets = leaves.groupby("session_id")["leaf"].apply(set)
    multi = baskets[baskets.map(len) > 1]
    assert len(multi) > 20
    with_companion = multi.map(lambda s: any(comp[x] in s for x in s)).mean()
    assert with_companion > 0.5


def test_seasonality_evening_beats_night(shop: Shop) -> None:
    hours = shop.events.to_pandas()["ts"].dt.hour
    assert (hours == 20).sum() > 3 * (hours == 3).sum()


def test_new_items_and_users_arrive_over_time(shop: Shop) -> None:
    start = CFG.start_dt
    assert pc.sum(pc.greater(shop.catalog["created_at"], start)).as_py() > 0.1 * shop.catalog.num_rows
    assert pc.sum(pc.greater(shop.users["created_at"], start)).as_py() > 0.3 * shop.users.num_rows


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"users": -1}, "--users"),
        ({"items": 0}, "--items"),
        ({"days": 0}, "--days"),
        ({"start": "yesterday"}, "--start"),
        ({"start": "2099-01-01"}, "future"),
    ],
)
def test_impossible_configs_are_bad_input(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(BadInput, match=message):
        generate_shop(ShopConfig(**kwargs))  # type: ignore[arg-type]


def test_tiny_shop_still_works() -> None:
    tiny = generate_shop(ShopConfig(users=1, items=1, days=1, seed=1))
    assert tiny.events.num_rows >= 1
