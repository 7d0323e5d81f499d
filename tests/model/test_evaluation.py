"""The evaluation protocol: metrics against hand-computed values, the temporal split, bootstrap CIs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import numpy as np
import pandas as pd
import pytest

from models.evaluation import (
    Split,
    bootstrap_ci,
    catalog_coverage,
    evaluate,
    intra_list_diversity,
    novelty,
    paired_bootstrap_ci,
    popularity_shares,
    ranking_metrics,
    temporal_split,
)

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def _events(rows: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    """(user, item, event_type, day offset) → an event frame with the columns evaluation reads."""
    return pd.DataFrame(
        {
            "event_id": [f"e{n}" for n in range(len(rows))],
            "user_id": [r[0] for r in rows],
            "item_id": [r[1] for r in rows],
            "event_type": [r[2] for r in rows],
            "ts": [T0 + pd.Timedelta(days=r[3]) for r in rows],
            "session_id": [f"{r[0]}-{int(r[3])}" for r in rows],
        }
    )


def test_ranking_metrics_match_hand_computed_values() -> None:
    relevant = {"b": 3, "d": 1, "e": 2}
    got = ranking_metrics(["a", "b", "c", "d"], relevant, k=4)
    dcg = 3 / np.log2(3) + 1 / np.log2(5)
    idcg = 3 / np.log2(2) + 2 / np.log2(3) + 1 / np.log2(4)
    assert got["recall"] == pytest.approx(2 / 3)
    assert got["ndcg"] == pytest.approx(dcg / idcg)
    assert got["map"] == pytest.approx((1 / 2 + 2 / 4) / 3)
    assert got["hit_rate"] == 1.0


def test_ranking_metrics_cut_at_k_and_perfect_list_scores_one() -> None:
    relevant = {"b": 3, "d": 1, "e": 2}
    assert ranking_metrics(["a", "b"], relevant, k=1) == {
        "recall": 0.0,
        "ndcg": 0.0,
        "map": 0.0,
        "hit_rate": 0.0,
    }
    perfect = ranking_metrics(["b", "e", "d"], relevant, k=3)
    assert perfect == pytest.approx({"recall": 1.0, "ndcg": 1.0, "map": 1.0, "hit_rate": 1.0})
    # Grades matter: the right items in the wrong order lose NDCG but not recall or AP.
    reversed_ = ranking_metrics(["d", "e", "b"], relevant, k=3)
    assert reversed_["recall"] == 1.0 and reversed_["map"] == 1.0
    idcg = 3 + 2 / np.log2(3) + 1 / 2
    assert reversed_["ndcg"] == pytest.approx((1 + 2 / np.log2(3) + 3 / 2) / idcg)
    # AP divides by min(k, |rel|): one relevant item at rank 2 of k=2 gives 1/2.
    assert ranking_metrics(["x", "b"], {"b": 1}, k=2)["map"] == pytest.approx(0.5)


def test_list_metrics_match_hand_computed_values() -> None:
    category = {"a": "A", "b": "A", "c": "B"}
    assert intra_list_diversity(["a", "b", "c"], category) == pytest.approx(2 / 3)
    assert intra_list_diversity(["a", "c"], category) == 1.0
    assert intra_list_diversity(["a", "b"], category) == 0.0
    assert np.isnan(intra_list_diversity(["a"], category))
    assert novelty(["a", "b"], {"a": 0.5, "b": 0.25}, floor=0.01) == pytest.approx(1.5)
    assert novelty(["z"], {}, floor=0.125) == pytest.approx(3.0)
    assert catalog_coverage([["a", "b"], ["b", "c"]], ["a", "b", "c", "d"]) == pytest.approx(0.75)


def test_popularity_shares_are_smoothed_and_sum_to_one() -> None:
    train = _events([("u1", "a", "view", 0), ("u2", "a", "view", 0), ("u1", "b", "view", 0)])
    shares, floor = popularity_shares(train, ["a", "b", "c"])
    assert shares == pytest.approx({"a": 3 / 6, "b": 2 / 6, "c": 1 / 6})
    assert floor == pytest.approx(1 / 6)


def _tiny_split() -> Split:
    events = _events(
        [
            ("u1", "a", "view", 0),
            ("u1", "b", "purchase", 1),
            ("u2", "a", "view", 2),
            ("u1", "b", "view", 9),  # seen in train: not relevant
            ("u1", "c", "view", 9),
            ("u1", "c", "add_to_cart", 9.5),
            ("u3", "d", "purchase", 9.2),  # new user
            ("u3", "d", "rating", 9.6),  # not a positive interaction
            ("u4", "a", "remove_from_cart", 9.7),  # only a non-positive event: not a test user
            ("u2", "x", "view", 10),  # the latest event defines the cutoff
        ]
    )
    return temporal_split(events, holdout_days=2)


def test_temporal_split_respects_the_cutoff_and_segments_users() -> None:
    split = _tiny_split()
    assert split.cutoff == T0 + pd.Timedelta(days=8)
    assert (split.test["ts"] >= split.cutoff).all()
    assert (split.train["ts"] < split.cutoff).all()
    assert len(split.train) + len(split.test) == 10
    rel = {(u, i): g for u, i, g in split.relevance.itertuples(index=False)}
    assert rel == {("u1", "c"): 2, ("u3", "d"): 3, ("u2", "x"): 1}
    assert list(split.users) == ["u1", "u2", "u3"]
    assert list(split.with_history) == ["u1", "u2"]
    assert list(split.without_history) == ["u3"]


def test_temporal_split_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        temporal_split(_events([("u", "a", "view", 0)]), holdout_days=0)
    with pytest.raises(ValueError):
        temporal_split(_events([]), holdout_days=1)


class _Fixed:
    """A recommender that returns canned lists (including a seen item, which evaluation must drop)."""

    def __init__(self, lists: dict[str, list[str]]):
        self.lists = lists

    def fit(self, train: pd.DataFrame, catalog: pd.DataFrame | None = None) -> Self:
        return self

    def recommend(self, user_ids: Sequence[str], k: int, exclude_seen: bool = True) -> dict[str, list[str]]:
        return {u: self.lists.get(u, [])[:k] for u in user_ids}


def test_evaluate_builds_one_table_and_never_counts_seen_items() -> None:
    split = _tiny_split()
    catalog = pd.DataFrame({"item_id": list("abcdx"), "category": ["A>1", "A>2", "B>1", "B>2", "C"]})
    cheat = _Fixed({"u1": ["b", "c"], "u2": ["a", "x"], "u3": ["d"]})  # b, a are seen: dropped
    table = evaluate({"cheat": cheat}, split, k_values=(1, 2), catalog=catalog, n_boot=200)
    assert list(table["segment"]) == ["all", "with_history", "without_history"]
    assert list(table["users"]) == [3, 2, 1]
    row = table.set_index("segment").loc["all"]
    # After dropping seen items every user's first recommendation is a hit.
    assert row["hit_rate@1"] == 1.0 and row["recall@1"] == 1.0 and row["ndcg@1"] == 1.0
    assert row["coverage@2"] == pytest.approx(3 / 5)
    for col in ("ndcg@1_lo", "ndcg@1_hi", "recall@2_lo", "recall@2_hi", "map@2", "diversity@2", "novelty@2"):
        assert col in table.columns


def test_bootstrap_ci_contains_the_mean_and_narrows_with_more_users() -> None:
    rng = np.random.default_rng(0)
    small = rng.binomial(1, 0.3, size=100).astype(float)
    large = rng.binomial(1, 0.3, size=10_000).astype(float)
    lo_s, hi_s = bootstrap_ci(small, n=1000, seed=1)
    lo_l, hi_l = bootstrap_ci(large, n=1000, seed=1)
    assert lo_s <= small.mean() <= hi_s
    assert lo_l <= large.mean() <= hi_l
    assert (hi_l - lo_l) < (hi_s - lo_s) / 5  # width shrinks like 1/sqrt(n): 10x here
    assert bootstrap_ci(small, n=500, seed=7) == bootstrap_ci(small, n=500, seed=7)
    assert all(np.isnan(bootstrap_ci([])))


def test_paired_bootstrap_detects_a_consistent_difference() -> None:
    rng = np.random.default_rng(1)
    base = rng.random(500)
    lo, hi = paired_bootstrap_ci(base + 0.05, base, n=500)
    assert lo == pytest.approx(0.05) and hi == pytest.approx(0.05)
    lo, hi = paired_bootstrap_ci(base, rng.permutation(base), n=500)
    assert lo < 0 < hi
