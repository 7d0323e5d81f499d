"""The ranker's training data, built the way the policy will use the ranker.

Stage-1 retrieval (two-tower, co-occurrence, the sequence model, the recency lists) is fitted on
everything before a label window and asked for candidates as of the window's start; each candidate is
labelled with what the shopper then did with it. The label window is the validation period (the last
``validation_fraction`` of the training events, ``models.splits.validation``) unless ``label_days`` is
set, so it too never reads the test period.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from aisle.core.errors import BadInput
from aisle.core.settings import Settings
from models.evaluation import Split
from models.features import POLICY_SIGNALS
from models.splits import fraction_cut
from models.training.layout import RunLayout
from models.training.params import TrainParams
from models.training.policy import stage1_policy


def ranker_set(
    settings: Settings,
    events: pd.DataFrame,
    catalog: pd.DataFrame | None,
    params: TrainParams,
    layout: RunLayout,
    tuned: Mapping[str, Any],
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The ranker's training set, built the way the policy will use the ranker.

    Stage-1 retrieval (two-tower, co-occurrence, trending) is fitted on everything before the label
    window and asked for candidates as of the window's start; the user's interactions in the window
    are the graded positives, and ``negatives`` per positive are sampled from those candidates the
    user did not touch. Every row carries the stage-1 retrieval scores and Feast's point-in-time
    features at the label's time. Fitting stage 1 on the earlier data keeps the retrieval scores as
    uninformed about the labels as they will be about tomorrow's clicks at serving time.
    """
    from models.features import feature_coverage, ranker_training_set

    started = time.perf_counter()
    if params.label_days is not None:
        window_start = events["ts"].max() - pd.Timedelta(days=params.label_days)
        described = f"{params.label_days}-day label window"
    else:
        window_start = fraction_cut(events, params.validation_fraction)
        described = f"label window (the last {params.validation_fraction:.0%} of the training events)"
        first, last = events["ts"].min(), events["ts"].max()
        widened = last - pd.Timedelta(days=params.min_label_days)
        if widened < window_start and widened > first + (last - first) / 2:
            window_start = widened
            described = f"{params.min_label_days}-day label window (widened from {described})"
    before = events.loc[events["ts"] < window_start]
    window = events.loc[events["ts"] >= window_start]
    if before.empty or window.empty:
        raise BadInput(f"the ranker needs events both before and within its {described}; ingest more history")
    stage1 = stage1_policy(before, catalog, params, tuned)
    labels = window_labels(stage1, before, window, params)
    if labels.empty or labels["label"].nunique() < 2:
        raise BadInput(
            f"too few interactions in the ranker's {described} to train it; ingest more history or "
            "raise --validation-fraction"
        )
    frame = ranker_training_set(settings, labels)
    coverage = feature_coverage(frame)
    if coverage < 0.05:
        raise BadInput(
            f"the ranker's training set has almost no features (coverage {coverage:.1%}); "
            "run `aisle features build` before `aisle train`"
        )
    frame.to_parquet(layout.ranker_set, index=False)
    info = {
        "rows": len(frame),
        "positives": int((frame["label"] > 0).sum()),
        "negatives": int((frame["label"] == 0).sum()),
        "label_window_start": window_start.isoformat(),
        "feature_coverage": round(coverage, 4),
        "cold_start": stage1.config.cold_start,
        "seconds": round(time.perf_counter() - started, 3),
    }
    layout.ranker_info.write_text(json.dumps(info, indent=2))
    return info, frame


def window_labels(
    policy: Any, before: pd.DataFrame, window: pd.DataFrame, params: TrainParams
) -> pd.DataFrame:
    """Stage-1 candidates as of the window's start, each labelled with the strongest thing the user
    then did with it (``models.data.event_grades``: purchase 3 > cart 2 > view 1 > nothing 0, ratings by
    their stars); all positive candidates are kept and
    ``negatives`` unlabelled candidates per positive are sampled.

    Labelling candidates, rather than adding the window's interactions as positives, matters: items
    the user found outside retrieval's reach would all have low retrieval scores while the sampled
    negatives have high ones, and the ranker would learn to distrust retrieval (measured: tower-score
    AUC 0.33 on such a set, i.e. inverted).

    Shoppers new in the window are kept although a shopper without history gets the cold-start list,
    not the ranker's order: keeping only those with history before the window cut the ranker's rows by
    72% on MovieLens 100K and the policy's NDCG@10 for users with history on the validation period from
    0.199 to 0.176 (docs/performance.md, "Tried and rejected").
    """
    from models.context import from_lake
    from models.data import event_grades
    from models.hybrid import TOWER_COUNTERS
    from models.two_tower.data import user_queries

    grades = event_grades(window)
    graded = ~np.isnan(grades)
    pos = window.loc[graded, ["user_id", "item_id"]].assign(label=grades[graded].astype(int))
    pos = pos.groupby(["user_id", "item_id"], as_index=False)["label"].max()
    users = sorted(pos["user_id"].unique())
    # the shoppers' contexts as of the window's start (what the policy would have known), plus the
    # tower's activity counters over the same earlier data
    asked = before.loc[before["user_id"].isin(users)]
    queries = from_lake(asked, as_of=window["ts"].min()).queries(users)
    counters = user_queries(asked, history=1).set_index("user_id")[list(TOWER_COUNTERS)]
    frame = queries.frame.join(counters, on="user_id").fillna({c: 0.0 for c in TOWER_COUNTERS})
    candidates, _, _ = policy.candidates(frame, queries.excluded)
    labelled = candidates.merge(pos, on=["user_id", "item_id"], how="left")
    labelled["label"] = labelled["label"].fillna(0).astype(int)
    positives = labelled.loc[labelled["label"] > 0]
    rng = np.random.default_rng(params.seed)
    unlabelled = labelled.loc[labelled["label"] == 0]
    n_neg = min(len(unlabelled), len(positives) * params.negatives)
    negatives = unlabelled.iloc[np.sort(rng.choice(len(unlabelled), n_neg, replace=False))]
    rows = pd.concat([positives, negatives], ignore_index=True)
    if len(rows) > params.max_label_rows:
        rows = rows.iloc[np.sort(rng.choice(len(rows), params.max_label_rows, replace=False))]
    rows["event_timestamp"] = window["ts"].min()  # features as known when the candidates were made
    return rows[["user_id", "item_id", "event_timestamp", "label", *POLICY_SIGNALS]].reset_index(drop=True)


def snapshot_entities(split: Split, catalog: pd.DataFrame | None) -> tuple[list[str], list[str]]:
    users = sorted(set(split.users.astype(str)))
    items = set(split.train["item_id"]) | set(split.test["item_id"])
    if catalog is not None:
        items |= set(catalog["item_id"])
    return users, sorted(items)


def feature_snapshot(
    settings: Settings, users: list[str], items: list[str], as_of: pd.Timestamp, layout: RunLayout
) -> dict[str, Any]:
    """Feast's user and item features as of ``as_of``, written where the later stages read them."""
    from models.features import snapshot_features

    user_df, item_df = snapshot_features(settings, users, items, as_of)
    user_df.reset_index().to_parquet(layout.user_features, index=False)
    item_df.reset_index().to_parquet(layout.item_features, index=False)
    return {"as_of": as_of.isoformat(), "users": len(user_df), "items": len(item_df)}
