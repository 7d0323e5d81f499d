"""The two-tower model: query building on hand-made events, protocol hygiene and the export round trip
on a tiny generated shop, and the planted signal (beats popularity) on a bigger one."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ingestion.synthetic.shop import ShopConfig, generate_shop
from models.baselines import PopularityRecommender
from models.evaluation import Recommender, paired_bootstrap_ci, per_user_results, temporal_split
from models.two_tower import (
    USER_NUMERIC,
    TwoTowerArtifact,
    TwoTowerConfig,
    TwoTowerRecommender,
    export,
    user_queries,
)
from models.two_tower.data import history_windows, positive_pairs

T0 = pd.Timestamp("2026-01-01", tz="UTC")
FAST = TwoTowerConfig(embedding_dim=16, epochs=2, batch_size=256, history=5, seed=7)


def _events(rows: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    """(user, item, event_type, day offset) → an event frame."""
    return pd.DataFrame(
        {
            "user_id": [r[0] for r in rows],
            "item_id": [r[1] for r in rows],
            "event_type": [r[2] for r in rows],
            "ts": [T0 + pd.Timedelta(days=r[3]) for r in rows],
        }
    )


# ---------------------------------------------------------------- queries and examples (no TF)


def test_user_queries_newest_distinct_and_windowed_counts() -> None:
    events = _events(
        [
            ("u1", "a", "view", 0),
            ("u1", "b", "view", 40),
            ("u1", "a", "add_to_cart", 41),  # a again: now the newest
            ("u1", "c", "purchase", 42),
            ("u1", "d", "rating", 43),  # a rating is an interaction too (issue #11)
            ("u1", "e", "view", 50),  # at as_of: not before it
            ("u2", "x", "remove_from_cart", 44),  # not an interaction
        ]
    )
    frame = user_queries(events, history=2, as_of=T0 + pd.Timedelta(days=50))
    assert list(frame.columns) == ["user_id", "recent_items", *USER_NUMERIC]
    q = frame.set_index("user_id")
    assert q.loc["u1", "recent_items"] == ["d", "c"]
    # 30 days before day 50: b's view, a's cart, c's purchase; a's view on day 0 is too old
    assert q.loc["u1", list(USER_NUMERIC)].tolist() == [1, 1, 1]
    assert q.loc["u2", "recent_items"] == [] and q.loc["u2", list(USER_NUMERIC)].tolist() == [0, 0, 0]
    everything = user_queries(events, history=10).set_index("user_id")
    assert everything.loc["u1", "recent_items"] == ["e", "d", "c", "a", "b"]


def test_training_history_is_strictly_before_and_never_the_target() -> None:
    events = _events(
        [
            ("u1", "a", "view", 0),
            ("u1", "b", "view", 1),
            ("u1", "a", "purchase", 2),  # a again: still one example, weighted as a purchase
            ("u1", "c", "view", 3),
            ("u1", "d", "view", 3),  # same instant as c: neither is "before" the other
            ("u2", "c", "view", 0),
        ]
    )
    pairs = positive_pairs(events)
    assert pairs.loc[(pairs["user_id"] == "u1") & (pairs["item_id"] == "a"), "weight"].item() == 5.0
    index = {"a": 1, "b": 2, "c": 3, "d": 4}
    hist = history_windows(pairs, pairs["item_id"].map(index).to_numpy(), history=3)
    got = {
        (u, i): [h for h in row if h]
        for u, i, row in zip(pairs["user_id"], pairs["item_id"], hist, strict=True)
    }
    assert got == {
        ("u1", "a"): [],
        ("u1", "b"): [1],
        ("u1", "c"): [2, 1],
        ("u1", "d"): [2, 1],
        ("u2", "c"): [],
    }


def test_bad_input_is_refused_with_a_reason() -> None:
    model = TwoTowerRecommender(FAST)
    with pytest.raises(ValueError, match="empty"):
        model.fit(_events([]))
    with pytest.raises(ValueError, match="no positive interaction"):
        model.fit(_events([("u1", "a", "remove_from_cart", 0), ("u1", "b", "remove_from_cart", 1)]))
    with pytest.raises(ValueError, match="lack column"):
        model.fit(pd.DataFrame({"user_id": ["u1"], "item_id": ["a"]}))


# ---------------------------------------------------------------- a tiny shop: hygiene and export


@pytest.fixture(scope="module")
def tiny() -> tuple[pd.DataFrame, pd.DataFrame, TwoTowerRecommender]:
    shop = generate_shop(ShopConfig(users=400, items=80, days=30, seed=5))
    events, catalog = shop.events.to_pandas(), shop.catalog.to_pandas()
    return events, catalog, TwoTowerRecommender(FAST).fit(events, catalog)


def test_protocol_hygiene(tiny: tuple[pd.DataFrame, pd.DataFrame, TwoTowerRecommender]) -> None:
    events, catalog, model = tiny
    assert isinstance(model, Recommender)
    assert model.examples_ > 0 and model.epochs_run_ == FAST.epochs and len(model.history_) == FAST.epochs
    assert model.fit_seconds_ > 0
    assert model.item_embeddings().shape == (len(catalog), FAST.embedding_dim)
    assert model.item_embeddings().dtype == np.float32
    seen = events.groupby("user_id")["item_id"].agg(set).to_dict()
    users = [*sorted(seen)[:50], "nobody", "also-nobody"]
    recs = model.recommend(users, k=10)
    for user in users:
        items = recs[user]
        assert len(items) == len(set(items)) == 10
        assert not set(items) & seen.get(user, set())
    assert recs["nobody"] == recs["also-nobody"]  # every stranger is the same OOV query
    heavy = max(seen, key=lambda u: len(seen[u]))
    everything = model.recommend([heavy], k=len(catalog))[heavy]
    assert sorted(everything) == sorted(set(catalog["item_id"]) - seen[heavy])  # the rest, no more
    assert sorted(model.recommend([heavy], k=len(catalog), exclude_seen=False)[heavy]) == sorted(
        catalog["item_id"]
    )
    assert model.recommend(users, k=0) == {u: [] for u in users}

    again = TwoTowerRecommender(FAST).fit(events, catalog)
    assert again.recommend(users, k=10) == recs
    assert again.history_ == model.history_


def test_search_is_exact_and_honours_exclusions(
    tiny: tuple[pd.DataFrame, pd.DataFrame, TwoTowerRecommender],
) -> None:
    _, _, model = tiny
    emb = model.embed_users(
        pd.DataFrame({"user_id": ["u00001"], "recent_items": [[]], **{c: [0] for c in USER_NUMERIC}})
    )
    items, scores = model.search(emb, k=5)
    full = emb @ model.item_embeddings().T
    best = np.argsort(-full[0], kind="stable")[:5]
    assert items[0] == model.item_ids()[best].tolist()
    assert np.allclose(scores[0], full[0, best], atol=1e-6)
    drop = set(items[0][:2])
    excluded, _ = model.search(emb, k=5, exclude=[drop])
    assert not drop & set(excluded[0]) and excluded[0][:3] == items[0][2:]


def test_export_round_trip(
    tiny: tuple[pd.DataFrame, pd.DataFrame, TwoTowerRecommender], tmp_path: Path
) -> None:
    events, catalog, model = tiny
    paths = export(model, tmp_path / "tt")
    assert set(paths) == {"user_tower", "item_embeddings", "item_ids", "index", "config"}
    artifact = TwoTowerArtifact.load(tmp_path / "tt")
    assert artifact.history == FAST.history
    assert artifact.item_ids.tolist() == model.item_ids().tolist()

    queries = user_queries(events, FAST.history).head(40)
    strangers = pd.DataFrame(
        {
            "user_id": ["nobody", "u00000", "nobody-with-a-session"],
            "recent_items": [[], [], [catalog["item_id"].iloc[0], "not-an-item"]],
            "views_30d": [0, 3, 1],
            "carts_30d": [0, 0, 1],
            "purchases_30d": [0, 1, 0],
        }
    )
    queries = pd.concat([queries, strangers], ignore_index=True)
    served = artifact.embed_users(queries)
    assert served.dtype == np.float32 and served.shape == (len(queries), FAST.embedding_dim)
    assert np.allclose(served, model.embed_users(queries), atol=1e-5)

    exclude = [set(items) for items in queries["recent_items"]]
    exact_items, exact_scores = model.search(served, k=8, exclude=exclude)
    faiss_items, faiss_scores = artifact.search(served, k=8, exclude=exclude)
    assert faiss_items == exact_items
    assert np.allclose(np.array(faiss_scores), np.array(exact_scores), atol=1e-5)
    for items, banned in zip(faiss_items, exclude, strict=True):
        assert len(items) == 8 and not set(items) & banned


def test_fits_without_a_catalog(tiny: tuple[pd.DataFrame, pd.DataFrame, TwoTowerRecommender]) -> None:
    events, _, _ = tiny
    model = TwoTowerRecommender(replace(FAST, epochs=1)).fit(events)
    assert len(model.item_ids()) == events["item_id"].nunique()
    user = str(events["user_id"].iloc[0])
    assert len(model.recommend([user, "nobody"], k=5)[user]) == 5


# ---------------------------------------------------------------- the planted signal


@pytest.mark.slow
def test_beats_popularity_for_users_with_history() -> None:
    shop = generate_shop(ShopConfig(users=8000, items=500, days=60, seed=3))
    split = temporal_split(shop.events.to_pandas(), holdout_days=7)
    catalog = shop.catalog.to_pandas()
    assert len(split.with_history) > 1000
    models: dict[str, Recommender] = {
        "popularity": PopularityRecommender().fit(split.train, catalog),
        "two_tower": TwoTowerRecommender(TwoTowerConfig(seed=0)).fit(split.train, catalog),
    }
    per_user = per_user_results(models, split, (10,), catalog)
    pop, tt = per_user["popularity"], per_user["two_tower"]
    assert (tt["user_id"] == pop["user_id"]).all()
    history = (pop["segment"] == "with_history").to_numpy()
    lo, hi = paired_bootstrap_ci(tt["ndcg@10"][history], pop["ndcg@10"][history], n=1000, seed=0)
    ours, theirs = tt["ndcg@10"][history].mean(), pop["ndcg@10"][history].mean()
    assert lo > 0, (
        f"two-tower does not beat popularity for users with history: "
        f"NDCG@10 {ours:.4f} vs {theirs:.4f}, paired CI ({lo:.4f}, {hi:.4f})"
    )
