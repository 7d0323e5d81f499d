"""Wide & Deep ranker cost: training seconds per epoch per 1M rows, and scoring rows/s through the
exported SavedModel and the in-memory model, against a same-process baseline of a trivial numpy
linear scoring of the same rows (so the ratio survives a noisy machine). Also the latency of one
serving-sized request (100 candidates) through the artifact.

The frame is synthetic but of production width: 2 ids, 4 categoricals, 20 numerics, 2 crosses,
named like the Feast training set.
"""

from __future__ import annotations

import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import report

from models.wide_deep import RankerSpec, WideDeepArtifact, WideDeepConfig, WideDeepRanker, export
from models.wide_deep.train import roc_auc

ROWS = 1_000_000
USERS = 100_000
ITEMS = 20_000
SCORE_ROWS = 200_000
WINDOWS = (1, 7, 30)

USER_NUMERIC = [
    f"user_features__{kind}_{w}d" for kind in ("views", "carts", "purchases") for w in WINDOWS
] + [
    "user_features__days_since_last_purchase",
    "user_features__avg_price_paid_30d",
    "user_features__purchase_rate_30d",
]
ITEM_NUMERIC = [f"item_features__views_{w}d" for w in WINDOWS] + [
    "item_features__conversion_rate_30d",
    "item_features__trending_score",
    "item_features__price",
    "item_features__age_days",
]
PAIR_NUMERIC = ["pair__category_affinity_30d"]
SPEC = RankerSpec(
    ids=("user_id", "item_id"),
    categorical=(
        "user_features__fav_category_30d",
        "user_features__fav_brand_30d",
        "item_features__top_category",
        "item_features__brand",
    ),
    numeric=tuple(USER_NUMERIC + ITEM_NUMERIC + PAIR_NUMERIC),
    crosses=(
        ("user_features__fav_category_30d", "item_features__top_category"),
        ("user_features__fav_brand_30d", "item_features__brand"),
    ),
)


def training_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    """Users and items with Feast-like features, joined onto random pairs; graded labels driven by the
    category and brand crosses and price, with some missing values as in a real point-in-time join."""
    rng = np.random.default_rng(seed)
    user_cat = rng.integers(0, 20, USERS)
    user_brand = rng.integers(0, 500, USERS)
    item_cat = rng.integers(0, 20, ITEMS)
    item_brand = rng.integers(0, 500, ITEMS)
    u = rng.integers(0, USERS, rows)
    i = rng.integers(0, ITEMS, rows)
    frame = pd.DataFrame(
        {
            "user_id": np.char.add("u", u.astype(str)).astype(object),
            "item_id": np.char.add("i", i.astype(str)).astype(object),
            "user_features__fav_category_30d": np.char.add("c", user_cat[u].astype(str)).astype(object),
            "user_features__fav_brand_30d": np.char.add("b", user_brand[u].astype(str)).astype(object),
            "item_features__top_category": np.char.add("c", item_cat[i].astype(str)).astype(object),
            "item_features__brand": np.char.add("b", item_brand[i].astype(str)).astype(object),
        }
    )
    user_numeric = rng.poisson(5, (USERS, len(USER_NUMERIC))).astype(np.float64)
    item_numeric = rng.lognormal(2, 1, (ITEMS, len(ITEM_NUMERIC)))
    for k, name in enumerate(USER_NUMERIC):
        frame[name] = user_numeric[u, k]
    for k, name in enumerate(ITEM_NUMERIC):
        frame[name] = item_numeric[i, k]
    frame[PAIR_NUMERIC[0]] = rng.random(rows)
    for name in ("user_features__days_since_last_purchase", "user_features__avg_price_paid_30d"):
        frame.loc[rng.random(rows) < 0.3, name] = np.nan
    logit = (
        2.5 * (user_cat[u] == item_cat[i])
        + 1.5 * (user_brand[u] == item_brand[i])
        - 0.3 * np.log(frame["item_features__price"].to_numpy())
        - 2.0
    )
    relevant = rng.random(rows) < 1 / (1 + np.exp(-logit))
    frame["label"] = np.where(relevant, rng.choice([1, 2, 3], rows, p=[0.6, 0.25, 0.15]), 0)
    return frame


def numpy_baseline(frame: pd.DataFrame) -> np.ndarray:
    """The cheapest honest scorer of the same rows: pull the numerics out of the frame, NaN → 0, dot."""
    matrix = frame[list(SPEC.numeric)].to_numpy(dtype=np.float32)
    weights = np.linspace(-1, 1, matrix.shape[1], dtype=np.float32)
    return np.nan_to_num(matrix) @ weights


def rows_per_second(score: Callable[[pd.DataFrame], np.ndarray], frame: pd.DataFrame) -> tuple[float, float]:
    score(frame)  # warm up: tracing, and oneDNN primitives for the full batch shape
    started = time.perf_counter()
    score(frame)
    seconds = time.perf_counter() - started
    return seconds, len(frame) / seconds


def main(rows: int = ROWS) -> None:
    started = time.perf_counter()
    frame = training_frame(rows)
    build_s = time.perf_counter() - started
    config = WideDeepConfig(epochs=1)
    ranker = WideDeepRanker(SPEC, config).fit(frame)
    per_million = ranker.fit_seconds_ * 1_000_000 / rows
    report(
        "wide_deep_train",
        rows=rows,
        columns=len(SPEC.columns),
        crosses=len(SPEC.crosses),
        batch_size=config.batch_size,
        build_frame_s=round(build_s, 1),
        fit_1_epoch_s=round(ranker.fit_seconds_, 1),
        s_per_epoch_per_1m_rows=round(per_million, 1),
        loss=round(ranker.history_["loss"][-1], 4),
    )

    holdout = training_frame(SCORE_ROWS, seed=1)
    scoring = holdout.drop(columns="label")
    with tempfile.TemporaryDirectory() as tmp:
        export(ranker, Path(tmp) / "wd")
        artifact = WideDeepArtifact.load(Path(tmp) / "wd")
        memory_s, memory_rps = rows_per_second(ranker.score, scoring)
        artifact_s, artifact_rps = rows_per_second(artifact.score, scoring)
        base_s, base_rps = rows_per_second(numpy_baseline, scoring)
        request = scoring.head(100)
        latencies = []
        for _ in range(50):
            t0 = time.perf_counter()
            artifact.score(request)
            latencies.append(time.perf_counter() - t0)
        same = bool(np.allclose(ranker.score(request), artifact.score(request), atol=1e-5))
        auc = roc_auc(holdout["label"].to_numpy() > 0, artifact.score(scoring))
    report(
        "wide_deep_score",
        rows=SCORE_ROWS,
        in_memory_rows_per_s=round(memory_rps),
        artifact_rows_per_s=round(artifact_rps),
        numpy_baseline_rows_per_s=round(base_rps),
        ratio_artifact_vs_baseline=round(artifact_s / base_s, 1),
        ratio_in_memory_vs_baseline=round(memory_s / base_s, 1),
        artifact_100_rows_median_ms=round(statistics.median(latencies) * 1000, 2),
        artifact_matches_in_memory=same,
        holdout_auc=round(auc, 3),
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else ROWS)  # a smaller row count for a quick look
