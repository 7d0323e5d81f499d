"""The quality gate: it must refuse a broken model, say why, and let an honest one through."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from ingestion.synthetic.shop import ShopConfig, generate_shop
from models.baselines import CooccurrenceRecommender, PopularityRecommender
from models.evaluation import Split, per_user_results, temporal_split
from models.gate import behavioural_checks, quality_gate


@pytest.fixture(scope="module")
def split() -> Split:
    events = generate_shop(ShopConfig(users=1500, items=300, days=30, seed=5)).events.to_pandas()
    return temporal_split(events, holdout_days=5)


class ShuffledRecommender:
    """A deliberately broken model: popularity's item ids scrambled, so its scores mean nothing."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)

    def fit(self, train: pd.DataFrame, catalog: pd.DataFrame | None = None) -> ShuffledRecommender:
        self.base = PopularityRecommender().fit(train, catalog)
        self.base.item_ids_ = self.rng.permutation(self.base.item_ids_)
        return self

    def recommend(self, user_ids: Sequence[str], k: int, exclude_seen: bool = True) -> dict[str, list[str]]:
        return self.base.recommend(user_ids, k, exclude_seen)


class DuplicatingRecommender(PopularityRecommender):
    def recommend(self, user_ids: Sequence[str], k: int, exclude_seen: bool = True) -> dict[str, list[str]]:
        recs = super().recommend(user_ids, k, exclude_seen)
        return {u: items[:1] * len(items) for u, items in recs.items()}


def _frames(split: Split, **models: object) -> dict[str, pd.DataFrame]:
    fitted = {name: m.fit(split.train) for name, m in models.items()}  # type: ignore[attr-defined]
    return per_user_results(fitted, split, k_values=[10])


def test_gate_refuses_a_broken_model_and_says_why(split: Split) -> None:
    frames = _frames(split, broken=ShuffledRecommender(), popularity=PopularityRecommender())
    decision = quality_gate(frames["broken"], {"popularity": frames["popularity"]}, checks={"ok": True})
    assert not decision.passed
    assert any("worse than popularity" in reason for reason in decision.reasons)
    assert decision.comparisons["popularity"]["ci_hi"] < 0


def test_gate_passes_a_model_that_is_not_worse_and_an_equal_one(split: Split) -> None:
    frames = _frames(split, cooc=CooccurrenceRecommender(), popularity=PopularityRecommender())
    notworse = quality_gate(frames["cooc"], {"popularity": frames["popularity"]}, checks={"ok": True})
    assert notworse.passed, notworse.reasons
    assert notworse.comparisons["popularity"]["ci_hi"] > 0  # not worse beyond the interval
    same = quality_gate(frames["popularity"], {"champion": frames["popularity"]}, checks={"ok": True})
    assert same.passed and same.comparisons["champion"]["diff"] == 0


def test_gate_refuses_on_a_failed_behavioural_check(split: Split) -> None:
    frames = _frames(split, popularity=PopularityRecommender())
    decision = quality_gate(frames["popularity"], {}, checks={"no_duplicates": False, "deterministic": True})
    assert not decision.passed
    assert decision.reasons == ["behavioural check failed: no_duplicates"]


def test_gate_refuses_references_scored_on_other_users(split: Split) -> None:
    frames = _frames(split, popularity=PopularityRecommender())
    half = frames["popularity"].iloc[: len(frames["popularity"]) // 2]
    decision = quality_gate(frames["popularity"], {"champion": half}, checks={})
    assert not decision.passed and "different users" in decision.reasons[0]


def test_behavioural_checks_catch_duplicates_and_seen_items(split: Split) -> None:
    users = [str(u) for u in split.with_history[:20]]
    seen = split.seen_items()
    catalog = set(split.train["item_id"])
    good = PopularityRecommender().fit(split.train)
    assert all(behavioural_checks(good.recommend, users, seen, catalog).values())

    dup = DuplicatingRecommender().fit(split.train)
    assert not behavioural_checks(dup.recommend, users, seen, catalog)["no_duplicates"]

    def leaky(user_ids: list[str], k: int) -> dict[str, list[str]]:
        return good.recommend(user_ids, k, exclude_seen=False)

    assert not behavioural_checks(leaky, users, seen, catalog)["no_seen_items"]


def test_cold_start_source_is_chosen_on_the_validation_period_not_the_test_days() -> None:
    from models.evaluation import split_at
    from models.tuning import choose_cold_start

    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    rows = [  # (user, item, type, hours after t0): "classic" was bought long ago, "hot" lately
        *[(f"o{i}", "classic", "purchase", i) for i in range(6)],
        ("o9", "hot", "view", 200),
        ("o9", "hot", "purchase", 201),
        ("o9", "other", "view", 202),
        ("new1", "hot", "purchase", 300),  # validation period: new shoppers take the hot item
        ("new2", "hot", "view", 301),
        ("o1", "classic", "view", 302),  # an old shopper's repeat never counts for cold start
    ]
    events = pd.DataFrame(
        {
            "user_id": [r[0] for r in rows],
            "item_id": [r[1] for r in rows],
            "event_type": [r[2] for r in rows],
            "ts": [t0 + pd.Timedelta(hours=r[3]) for r in rows],
        }
    )
    validation = split_at(events, t0 + pd.Timedelta(hours=250))
    decided = {
        "recent_popularity": {"params": {"window_days": 3.0}},
        "trending": {"params": {"half_life_days": 0.5}},
    }
    chosen = choose_cold_start(validation, None, decided, k=1)
    assert chosen["new_users_only"] and chosen["users"] == 2
    assert chosen["ndcg"]["popularity"] == 0.0 and chosen["source"] in ("recent_popularity", "trending")
    assert chosen["ndcg"][chosen["source"]] > 0.9
