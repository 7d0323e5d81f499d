"""The baselines: protocol hygiene on tiny data, and the planted signal on a generated shop."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ingestion.synthetic.shop import ShopConfig, generate_shop
from models.baselines import (
    CooccurrenceRecommender,
    ItemKNNRecommender,
    PopularityRecommender,
    TrendingRecommender,
)
from models.evaluation import (
    Recommender,
    Split,
    evaluate,
    paired_bootstrap_ci,
    per_user_results,
    temporal_split,
)
from tests.model.lists import assert_clean_lists

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def _all_models() -> dict[str, Recommender]:
    return {
        "popularity": PopularityRecommender(),
        "trending": TrendingRecommender(half_life_days=3.0),
        "cooccurrence": CooccurrenceRecommender(recent=20),
        "item_knn": ItemKNNRecommender(neighbours=50),
    }


def _events(rows: list[tuple[str, str, str, float, str]]) -> pd.DataFrame:
    """(user, item, event_type, day offset, session) → an event frame."""
    return pd.DataFrame(
        {
            "user_id": [r[0] for r in rows],
            "item_id": [r[1] for r in rows],
            "event_type": [r[2] for r in rows],
            "ts": [T0 + pd.Timedelta(days=r[3]) for r in rows],
            "session_id": [r[4] for r in rows],
        }
    )


TINY = _events(
    [
        ("u1", "phone", "purchase", 0, "s1"),
        ("u1", "case", "purchase", 0, "s1"),
        ("u2", "phone", "view", 1, "s2"),
        ("u2", "case", "add_to_cart", 1, "s2"),
        ("u3", "phone", "purchase", 2, "s3"),
        ("u4", "lamp", "view", 9, "s4"),
        ("u4", "lamp", "view", 9, "s4"),
        ("u5", "mug", "view", 0, "s5"),
        ("u5", "mug", "view", 0, "s5"),
        ("u5", "mug", "view", 0, "s5"),
    ]
)
CATALOG = pd.DataFrame({"item_id": ["phone", "case", "lamp", "mug", "sofa"]})


def test_popularity_weights_event_types() -> None:
    recs = PopularityRecommender().fit(TINY, CATALOG).recommend(["nobody"], k=5)
    # phone 5+1+5, case 5+3, mug 3 views, lamp 2 views, sofa never touched.
    assert recs["nobody"] == ["phone", "case", "mug", "lamp", "sofa"]


def test_trending_favours_recent_activity() -> None:
    recs = TrendingRecommender(half_life_days=1.0).fit(TINY, CATALOG).recommend(["nobody"], k=2)
    assert recs["nobody"][0] == "lamp"  # 2 views yesterday-ish beat purchases a week before
    with pytest.raises(ValueError):
        TrendingRecommender(half_life_days=0)


def test_cooccurrence_recommends_the_companion() -> None:
    model = CooccurrenceRecommender().fit(TINY, CATALOG)
    assert model.recommend(["u3"], k=1)["u3"] == ["case"]  # bought phone: case was bought with it
    assert model.recommend(["new"], k=2)["new"] == ["phone", "case"]  # no history: popularity


def test_item_knn_recommends_items_with_a_shared_audience() -> None:
    model = ItemKNNRecommender().fit(TINY, CATALOG)
    assert model.recommend(["u3"], k=1)["u3"] == ["case"]
    assert model.recommend(["new"], k=2)["new"] == ["phone", "case"]


@pytest.mark.parametrize("name", ["popularity", "trending", "cooccurrence", "item_knn"])
def test_never_a_seen_item_nor_a_duplicate_and_deterministic(name: str) -> None:
    model = _all_models()[name]
    assert isinstance(model, Recommender)
    model.fit(TINY, CATALOG)
    users = ["u1", "u2", "u3", "u4", "u5", "new"]
    recs = model.recommend(users, k=10)
    seen = TINY.groupby("user_id")["item_id"].agg(set).to_dict()
    assert_clean_lists(recs, users, seen, n_items=5)
    assert recs == _all_models()[name].fit(TINY, CATALOG).recommend(users, k=10)
    assert sorted(model.recommend(["u1"], k=10, exclude_seen=False)["u1"]) == sorted(CATALOG["item_id"])
    assert model.recommend(users, k=0) == {u: [] for u in users}


@pytest.fixture(scope="module")
def shop_split() -> tuple[Split, pd.DataFrame]:
    shop = generate_shop(ShopConfig(users=3000, items=400, days=60, seed=3))
    return temporal_split(shop.events.to_pandas(), holdout_days=7), shop.catalog.to_pandas()


@pytest.mark.slow
def test_generated_shop_no_seen_items_at_scale(shop_split: tuple[Split, pd.DataFrame]) -> None:
    split, catalog = shop_split
    seen = split.seen_items()
    users = [str(u) for u in split.users]
    for model in _all_models().values():
        recs = model.fit(split.train, catalog).recommend(users, k=20)
        for user in users:
            assert len(recs[user]) == 20 == len(set(recs[user]))
            assert not set(recs[user]) & seen.get(user, set())


@pytest.mark.slow
def test_personalised_baselines_beat_popularity_for_users_with_history(
    shop_split: tuple[Split, pd.DataFrame],
) -> None:
    split, catalog = shop_split
    assert len(split.with_history) > 300 and len(split.without_history) > 300
    models = _all_models()
    for model in models.values():
        model.fit(split.train, catalog)
    per_user = per_user_results(models, split, (10,), catalog)
    pop = per_user["popularity"]
    history = (pop["segment"] == "with_history").to_numpy()
    for name in ("cooccurrence", "item_knn"):
        frame = per_user[name]
        assert (frame["user_id"] == pop["user_id"]).all()
        lo, _ = paired_bootstrap_ci(frame["ndcg@10"][history], pop["ndcg@10"][history], n=1000, seed=0)
        assert lo > 0.01, f"{name} does not clearly beat popularity for users with history (CI low {lo:.4f})"
        # Without history they fall back to popularity, so they must not lose there either.
        assert np.allclose(frame["ndcg@10"][~history], pop["ndcg@10"][~history])
    table = evaluate(models, split, k_values=(10, 20), catalog=catalog, n_boot=200)
    assert len(table) == len(models) * 3
    assert table["coverage@10"].between(0, 1).all()
