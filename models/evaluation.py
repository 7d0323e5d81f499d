"""Offline evaluation: a strict temporal holdout, full ranking over the catalog, one comparison table.

Why this protocol: a random split leaks the future into training and flatters every model, and
sampled-negative metrics rank models inconsistently (Krichene & Rendle, 2020). So the test period is
the last days of the data, every model ranks the whole catalog, and items a user already touched in
training are excluded from recommendations *and* from the relevant set (re-recommending them is a
different product decision, and would hand a free win to models that just echo history). Results
are reported per segment because a model that only helps users with history can hide behind the
majority of newcomers, and with bootstrap confidence intervals because a few hundred test users make
differences of a point or two noise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final, Protocol, Self, runtime_checkable

import numpy as np
import pandas as pd

from aisle.core.schemas import LABEL_GRADES
from models.data import event_grades

#: Graded relevance of a held-out interaction (ratings by their stars: ``models.data.event_grades``);
#: the strongest one per (user, item) counts.
RELEVANCE_GRADES: Final = LABEL_GRADES
SEGMENTS: Final = ("all", "with_history", "without_history")
RANKING_METRICS: Final = ("recall", "ndcg", "map", "hit_rate")
LIST_METRICS: Final = ("diversity", "novelty")


@runtime_checkable
class Recommender(Protocol):
    """What evaluation (and serving) needs from any model or baseline."""

    def fit(self, train: pd.DataFrame, catalog: pd.DataFrame | None = None) -> Self: ...

    def recommend(
        self, user_ids: Sequence[str], k: int, exclude_seen: bool = True
    ) -> dict[str, list[str]]: ...


@dataclass(frozen=True)
class Split:
    """A temporal train/test split plus what evaluation derives from it once.

    ``relevance`` has one row per (user, item) that the user positively interacted with in the
    holdout and had *not* touched in training, with its graded relevance. ``users`` are the users with
    at least one such row; they are partitioned into ``with_history`` / ``without_history``.
    """

    train: pd.DataFrame
    test: pd.DataFrame
    cutoff: pd.Timestamp
    relevance: pd.DataFrame
    users: np.ndarray
    with_history: np.ndarray
    without_history: np.ndarray

    def relevant_items(self) -> dict[str, dict[str, int]]:
        """user → {item: grade}, the shape the per-user metric functions take."""
        out: dict[str, dict[str, int]] = {}
        for user, item, grade in self.relevance[["user_id", "item_id", "grade"]].itertuples(index=False):
            out.setdefault(user, {})[item] = int(grade)
        return out

    def seen_items(self) -> dict[str, set[str]]:
        """user → items touched in training: never recommendable, never a hit."""
        grouped = self.train.groupby("user_id", sort=False)["item_id"]
        return {str(u): set(items) for u, items in grouped}


def temporal_split(events: pd.DataFrame, holdout_days: int) -> Split:
    """Train on everything before ``max(ts) - holdout_days``, test on the rest.

    The cutoff is relative to the data, not the wall clock, so the same lake always splits the same
    way; a test event is never earlier than the cutoff and a train event never at or after it.
    """
    if holdout_days <= 0:
        raise ValueError(f"holdout_days must be positive (got {holdout_days})")
    if events.empty:
        raise ValueError("cannot split an empty event table")
    cutoff = pd.to_datetime(events["ts"], utc=True).max() - pd.Timedelta(days=holdout_days)
    return split_at(events, cutoff)


def split_at(events: pd.DataFrame, cutoff: pd.Timestamp, end: pd.Timestamp | None = None) -> Split:
    """Train on the events before ``cutoff``, test on those at or after it (and before ``end``).

    Relevant test items are a user's interactions in the test period with items they had not touched
    before the cutoff, graded (``models.data.event_grades``); users with at least one are scored.
    """
    if events.empty:
        raise ValueError("cannot split an empty event table")
    ts = pd.to_datetime(events["ts"], utc=True)
    train = events.loc[ts < cutoff].reset_index(drop=True)
    later = ts >= cutoff if end is None else (ts >= cutoff) & (ts < end)
    test = events.loc[later].reset_index(drop=True)

    grades = event_grades(test)
    graded = ~np.isnan(grades)
    positive = test.loc[graded, ["user_id", "item_id"]].assign(grade=grades[graded].astype(int))
    relevance = positive.groupby(["user_id", "item_id"], as_index=False, sort=True)["grade"].max()
    seen = train[["user_id", "item_id"]].drop_duplicates().assign(_seen=True)
    relevance = relevance.merge(seen, on=["user_id", "item_id"], how="left")
    relevance = relevance.loc[relevance["_seen"].isna()].drop(columns="_seen").reset_index(drop=True)

    users = np.sort(relevance["user_id"].unique().astype(str))
    has_history = np.isin(users, train["user_id"].unique().astype(str))
    return Split(
        train=train,
        test=test,
        cutoff=cutoff,
        relevance=relevance,
        users=users,
        with_history=users[has_history],
        without_history=users[~has_history],
    )


# ---------------------------------------------------------------- per-user metrics (pure, hand-checkable)


def ranking_metrics(recommended: Sequence[str], relevant: Mapping[str, int], k: int) -> dict[str, float]:
    """Recall, graded NDCG, AP and hit for one user's list, cut at ``k``.

    Recall divides by all relevant items (not min(k, |rel|)) so it stays comparable across K; NDCG
    uses linear gains (the grade) and log2(rank + 1) discounts; AP divides by min(k, |rel|) so a
    perfect list scores 1.
    """
    top = list(recommended)[:k]
    if not relevant:
        return {"recall": 0.0, "ndcg": 0.0, "map": 0.0, "hit_rate": 0.0}
    hits = [item in relevant for item in top]
    n_hits = sum(hits)
    dcg = sum(relevant[item] / np.log2(rank + 2) for rank, item in enumerate(top) if item in relevant)
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(g / np.log2(rank + 2) for rank, g in enumerate(ideal))
    precisions, running = [], 0
    for rank, hit in enumerate(hits):
        if hit:
            running += 1
            precisions.append(running / (rank + 1))
    return {
        "recall": n_hits / len(relevant),
        "ndcg": float(dcg / idcg) if idcg > 0 else 0.0,
        "map": sum(precisions) / min(k, len(relevant)),
        "hit_rate": float(n_hits > 0),
    }


def precision_at_k(recommended: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """Hits in the top ``k`` over ``k`` (not over the list's length): a short list is not flattered."""
    return sum(1 for item in list(recommended)[:k] if relevant.get(item, 0) > 0) / k


def intra_list_diversity(recommended: Sequence[str], category: Mapping[str, str]) -> float:
    """1 - share of item pairs in the list that share a top-level category (NaN below two items).

    Items with no known category are treated as unlike every other item.
    """
    cats = [category.get(item) for item in recommended]
    n = len(cats)
    if n < 2:
        return float("nan")
    same = sum(1 for a in range(n) for b in range(a + 1, n) if cats[a] is not None and cats[a] == cats[b])
    return 1.0 - same / (n * (n - 1) / 2)


def novelty(recommended: Sequence[str], popularity_share: Mapping[str, float], floor: float) -> float:
    """Mean self-information -log2 p(item) of the list: higher means less obvious items.

    ``floor`` is the share used for items never seen in training (so novelty stays finite).
    """
    if not recommended:
        return float("nan")
    return float(np.mean([-np.log2(popularity_share.get(item, floor)) for item in recommended]))


def catalog_coverage(recommendations: Iterable[Sequence[str]], catalog_items: Iterable[str]) -> float:
    """Share of the catalog recommended to at least one user: a set-level, not per-user, figure."""
    catalog = set(catalog_items)
    if not catalog:
        return float("nan")
    shown = {item for rec in recommendations for item in rec}
    return len(shown & catalog) / len(catalog)


def popularity_shares(train: pd.DataFrame, catalog_items: Iterable[str]) -> tuple[dict[str, float], float]:
    """Laplace-smoothed share of training events per item, and the share of an unseen item."""
    counts = train["item_id"].value_counts()
    items = set(catalog_items) | set(counts.index)
    total = float(counts.sum()) + len(items)
    shares = {str(item): (float(counts.get(item, 0)) + 1.0) / total for item in items}
    return shares, 1.0 / total


def top_categories(catalog: pd.DataFrame) -> dict[str, str]:
    """item → top-level category ("A" of "A>B>C")."""
    cats = catalog["category"].astype("string").str.split(">").str[0].str.strip()
    return {str(i): str(c) for i, c in zip(catalog["item_id"], cats, strict=True) if not pd.isna(c)}


# ---------------------------------------------------------------- confidence intervals


def bootstrap_ci(
    values: Sequence[float] | np.ndarray, n: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (NaNs dropped): cheap and assumption-light."""
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = np.empty(n)
    block = max(1, 2_000_000 // x.size)
    for start in range(0, n, block):
        stop = min(n, start + block)
        means[start:stop] = x[rng.integers(0, x.size, size=(stop - start, x.size))].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    return (float(np.quantile(means, alpha)), float(np.quantile(means, 1.0 - alpha)))


def paired_bootstrap_ci(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, n: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """CI of mean(a - b) over the same users: pairing removes between-user variance from the test."""
    return bootstrap_ci(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64), n=n, seed=seed)


# ---------------------------------------------------------------- the comparison


def per_user_results(
    models: Mapping[str, Recommender],
    split: Split,
    k_values: Sequence[int] = (10, 20),
    catalog: pd.DataFrame | None = None,
) -> dict[str, pd.DataFrame]:
    """One frame per model: a row per test user, a column per metric@K, plus ``segment``.

    Models must already be fitted on ``split.train``. Seen items are filtered here as well, so a
    model that forgets to exclude them is scored as if it had not recommended them.
    """
    users = [str(u) for u in split.users]
    relevant = split.relevant_items()
    seen = split.seen_items()
    with_history = set(split.with_history.astype(str))
    if catalog is not None:
        catalog_items = catalog["item_id"].astype(str).tolist()
        category = top_categories(catalog)
    else:
        catalog_items = sorted(set(split.train["item_id"]) | set(split.test["item_id"]))
        category = {}
    shares, floor = popularity_shares(split.train, catalog_items)
    max_k = max(k_values)
    out: dict[str, pd.DataFrame] = {}
    for name, model in models.items():
        recs = model.recommend(users, max_k, exclude_seen=True)
        rows = []
        for user in users:
            user_seen = seen.get(user, set())
            rec = [item for item in recs.get(user, []) if item not in user_seen]
            row: dict[str, object] = {
                "user_id": user,
                "segment": "with_history" if user in with_history else "without_history",
            }
            for k in k_values:
                for metric, value in ranking_metrics(rec, relevant[user], k).items():
                    row[f"{metric}@{k}"] = value
                row[f"diversity@{k}"] = intra_list_diversity(rec[:k], category)
                row[f"novelty@{k}"] = novelty(rec[:k], shares, floor)
                row[f"_recs@{k}"] = rec[:k]
            rows.append(row)
        out[name] = pd.DataFrame(rows)
    return out


def summarize(
    per_user: Mapping[str, pd.DataFrame],
    k_values: Sequence[int],
    catalog_items: Sequence[str],
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Collapse per-user frames into the comparison table (model × segment), CIs on NDCG and recall."""
    records = []
    for name, frame in per_user.items():
        for segment in SEGMENTS:
            part = frame if segment == "all" else frame.loc[frame["segment"] == segment]
            rec: dict[str, object] = {"model": name, "segment": segment, "users": len(part)}
            for k in k_values:
                for metric in (*RANKING_METRICS, *LIST_METRICS):
                    col = f"{metric}@{k}"
                    rec[col] = float(part[col].mean()) if len(part) else float("nan")
                    if metric in ("ndcg", "recall"):
                        lo, hi = bootstrap_ci(part[col].to_numpy(), n=n_boot, seed=seed)
                        rec[f"{col}_lo"], rec[f"{col}_hi"] = lo, hi
                rec[f"coverage@{k}"] = catalog_coverage(part[f"_recs@{k}"], catalog_items)
            records.append(rec)
    return pd.DataFrame(records)


def evaluate(
    models: Mapping[str, Recommender],
    split: Split,
    k_values: Sequence[int] = (10, 20),
    catalog: pd.DataFrame | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """The one comparison table: rows = model × segment (all / with_history / without_history)."""
    per_user = per_user_results(models, split, k_values, catalog)
    if catalog is not None:
        catalog_items = catalog["item_id"].astype(str).tolist()
    else:
        catalog_items = sorted(set(split.train["item_id"]) | set(split.test["item_id"]))
    return summarize(per_user, k_values, catalog_items, n_boot=n_boot, seed=seed)


def subsample_users(split: Split, max_users: int, seed: int = 0) -> Split:
    """The same split scored on at most ``max_users`` test users (a seeded uniform sample).

    Full ranking costs users × catalog; on a large shop a few thousand users already give tight
    bootstrap intervals, so evaluation samples rather than skipping models. Both segments are sampled
    at the same rate, so their shares stay those of the population.
    """
    if len(split.users) <= max_users:
        return split
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(split.users, size=max_users, replace=False))
    return replace(
        split,
        relevance=split.relevance.loc[split.relevance["user_id"].isin(keep)].reset_index(drop=True),
        users=keep,
        with_history=split.with_history[np.isin(split.with_history, keep)],
        without_history=split.without_history[np.isin(split.without_history, keep)],
    )
