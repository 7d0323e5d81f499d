"""Online recommendation quality from graded exposures, with the offline evaluation's own definitions.

Every per-list number comes from ``models.evaluation`` (NDCG with graded gains, recall, hit rate,
precision@k, intra-list diversity, novelty, catalog coverage), applied to what the service showed and
what shoppers did next, so an online NDCG means exactly what the gate's offline NDCG means. The unit
is one exposure (one shown list); exposures without any outcome count, as zeros, because an ignored
list is the signal. Popularity bias is the mean popularity percentile of the shown items (1 = the most
interacted-with item of the reference window, 0 = never touched): scale-free, so days compare.

Series: ``all``, every ``model=<version>`` and every ``variant=<name>``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Final

import numpy as np
import pandas as pd

from models.evaluation import (
    catalog_coverage,
    intra_list_diversity,
    novelty,
    popularity_shares,
    precision_at_k,
    ranking_metrics,
)

STATS: Final = (
    "precision",
    "recall",
    "ndcg",
    "hit_rate",
    "coverage",
    "popularity_bias",
    "diversity",
    "novelty",
)
#: The stats a quality drop is judged on (the others describe the lists, not their success).
WATCHED: Final = ("hit_rate", "ndcg")


def per_exposure(
    positions: pd.DataFrame,
    k: int,
    category: Mapping[str, str],
    shares: Mapping[str, float],
    floor: float,
    popularity_pct: Mapping[str, float],
) -> pd.DataFrame:
    """One row per exposure: its list metrics @k (from ``models.evaluation``) and its series keys.

    The lists are cut from arrays sorted once (a pandas group per exposure costs ~50 µs each), so the
    per-list work is only the evaluation functions themselves.
    """
    ordered = positions.sort_values(["request_id", "position"], kind="stable")
    request = ordered["request_id"].to_numpy()
    items = ordered["item_id"].astype(str).to_numpy()
    grades = ordered["grade"].to_numpy()
    versions = ordered["model_version"].to_numpy()
    variants = ordered["variant"].to_numpy()
    bounds = np.flatnonzero(np.r_[True, request[1:] != request[:-1], True]) if len(request) else np.array([0])
    rows = []
    for lo, hi in itertools.pairwise(bounds):
        shown = items[lo:hi].tolist()
        relevant = {i: int(g) for i, g in zip(shown, grades[lo:hi].tolist(), strict=True) if g > 0}
        top = shown[:k]
        ranking = ranking_metrics(shown, relevant, k)
        rows.append(
            (
                request[lo],
                versions[lo],
                variants[lo],
                ranking["recall"],
                ranking["ndcg"],
                ranking["hit_rate"],
                precision_at_k(shown, relevant, k),
                intra_list_diversity(top, category),
                novelty(top, shares, floor),
                float(np.mean([popularity_pct.get(i, 0.0) for i in top])),
                top,
            )
        )
    columns = ["request_id", "model_version", "variant", "recall", "ndcg", "hit_rate", "precision"]
    return pd.DataFrame(rows, columns=[*columns, "diversity", "novelty", "popularity_bias", "_top"])


def popularity(
    reference_events: pd.DataFrame, catalog_items: Sequence[str]
) -> tuple[dict[str, float], float, dict[str, float]]:
    """Smoothed interaction shares (for novelty, as offline) and popularity percentiles (for bias)."""
    shares, floor = popularity_shares(reference_events, catalog_items)
    counts = reference_events["item_id"].astype(str).value_counts()
    pct = counts.rank(pct=True, method="max") if len(counts) else counts.astype(float)
    return shares, floor, {str(i): float(p) for i, p in pct.items()}


def series_of(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """``all``, ``model=<v>`` and ``variant=<name>`` slices of the per-exposure frame."""
    out = {"all": frame}
    for column, prefix in (("model_version", "model"), ("variant", "variant")):
        for value, part in frame.groupby(column, sort=True):
            out[f"{prefix}={value}"] = part
    return out


def summarize(frame: pd.DataFrame, catalog_items: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per series: every stat's mean over its exposures, coverage over the catalog, and the count."""
    out: dict[str, dict[str, float]] = {}
    if frame.empty:
        return out
    for name, part in series_of(frame).items():
        stats = {s: float(part[s].mean()) for s in STATS if s != "coverage"}
        stats["coverage"] = catalog_coverage(part["_top"], catalog_items)
        out[name] = {"exposures": float(len(part)), **{s: round(stats[s], 6) for s in STATS}}
    return out


def quality_drops(
    current: Mapping[str, Mapping[str, float]],
    reference: Mapping[str, Mapping[str, float]],
    tolerance: float,
    min_exposures: int,
) -> list[dict[str, object]]:
    """Series whose watched stats fell by more than ``tolerance`` (relative), both sides well measured."""
    drops: list[dict[str, object]] = []
    for series, now in current.items():
        before = reference.get(series)
        if before is None or now["exposures"] < min_exposures or before["exposures"] < min_exposures:
            continue
        for stat in WATCHED:
            if before[stat] > 0 and now[stat] < (1.0 - tolerance) * before[stat]:
                drops.append(
                    {
                        "series": series,
                        "stat": stat,
                        "reference": before[stat],
                        "current": now[stat],
                        "relative_change": round(now[stat] / before[stat] - 1.0, 4),
                    }
                )
    return drops
