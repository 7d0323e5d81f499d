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


def test_cold_start_source_is_chosen_on_the_label_window_not_the_test_days() -> None:
    from types import SimpleNamespace

    from models.training.ranker_data import choose_cold_start

    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    before = pd.DataFrame({"user_id": ["old"], "item_id": ["a"], "event_type": ["view"], "ts": [t0]})
    window = pd.DataFrame(
        {
            "user_id": ["new1", "new2", "old"],
            "item_id": ["hot", "hot", "classic"],
            "event_type": ["purchase", "view", "purchase"],
            "ts": [t0 + pd.Timedelta(days=1)] * 3,
        }
    )
    ids = np.array(["classic", "hot", "other"], dtype=object)
    policy = SimpleNamespace(
        item_ids=ids, trending=np.array([0.0, 5.0, 1.0]), popularity=np.array([9.0, 0.0, 1.0])
    )
    best, scores = choose_cold_start(policy, before, window, k=1)
    assert best == "trending" and scores["trending"] == 1.0 and scores["popularity"] == 0.0
    policy.trending, policy.popularity = policy.popularity, policy.trending  # the old user's buy never counts
    assert choose_cold_start(policy, before, window, k=1)[0] == "popularity"
