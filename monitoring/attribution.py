"""Exposures joined with outcomes: which shown item led to what, once per exposure.

An outcome is a positive event (``LABEL_GRADES``: view/click 1, cart/wishlist 2, purchase 3) on a shown
item. It belongs to an exposure when

1. it carries that exposure's ``request_id`` (the service put it in the links it rendered), or else
2. the same shopper touched the same item at most ``window`` after being shown it; with several such
   exposures the latest one before the event gets it (last touch), so an event counts once.

Per (exposure, item) the strongest outcome is the grade, so a repeated event never counts twice. An
event whose ``request_id`` names no exposure in the log is reported as unmatched, not guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from aisle.core.schemas import DEFAULT_VARIANT, LABEL_GRADES


@dataclass
class Attribution:
    """One row per shown item (``positions``) with its outcome grade, and the join's own counts."""

    positions: (
        pd.DataFrame
    )  # request_id, ts, user_id, item_id, position, score, model_version, variant, grade
    exposures: int
    outcomes: int  # positive events considered
    matched_by_request: int
    matched_by_time: int
    unmatched_request_ids: int

    def counts(self) -> dict[str, int]:
        return {
            "exposures": self.exposures,
            "shown_items": len(self.positions),
            "outcomes": self.outcomes,
            "matched_by_request_id": self.matched_by_request,
            "matched_by_user_item_time": self.matched_by_time,
            "unmatched_request_ids": self.unmatched_request_ids,
        }


def explode(exposures: pa.Table) -> pd.DataFrame:
    """One row per shown item: position 1 is the top of the list."""
    lengths = pc.list_value_length(exposures["items"]).to_numpy(zero_copy_only=False).astype(np.int64)
    n = int(lengths.sum())
    starts = np.repeat(np.cumsum(np.r_[0, lengths[:-1]]), lengths)
    rows = np.repeat(np.arange(exposures.num_rows), lengths)
    scores = exposures["scores"]
    score_lengths = pc.list_value_length(scores).fill_null(0).to_numpy(zero_copy_only=False)
    flat_scores = np.full(n, np.nan)
    if (score_lengths == lengths).all():
        flat_scores = pc.list_flatten(scores).to_numpy(zero_copy_only=False).astype(float)

    def column(name: str, default: str | None = None) -> np.ndarray:
        values = exposures[name].to_pandas()
        if default is not None:
            values = values.fillna(default)
        return values.to_numpy()[rows]

    return pd.DataFrame(
        {
            "request_id": column("request_id"),
            "ts": pd.to_datetime(
                exposures["ts"].cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy()[rows] * 1000,
                utc=True,
            ),
            "user_id": column("user_id").astype(str),
            "item_id": pc.list_flatten(exposures["items"]).to_numpy(zero_copy_only=False).astype(str),
            "position": (np.arange(n) - starts + 1).astype(np.int64),
            "score": flat_scores,
            "model_version": column("model_version", "unknown").astype(str),
            "variant": column("variant", DEFAULT_VARIANT).astype(str),
        }
    )


def as_ns(values: object) -> pd.Series:
    """UTC nanosecond times: one resolution on both sides of the as-of join."""
    return pd.Series(pd.to_datetime(values, utc=True)).astype("datetime64[ns, UTC]")


def outcome_events(events: pd.DataFrame) -> pd.DataFrame:
    """Positive events with their grade (``event_type`` → ``LABEL_GRADES``); others are not outcomes."""
    grade = events["event_type"].map(LABEL_GRADES)
    out = events.loc[grade.notna(), ["user_id", "item_id", "ts", "request_id"]].copy()
    out["grade"] = grade.dropna().astype(np.int64)
    out["ts"] = as_ns(out["ts"])
    out["user_id"] = out["user_id"].astype(str)
    out["item_id"] = out["item_id"].astype(str)
    return out.reset_index(drop=True)


def attribute(exposures: pa.Table, events: pd.DataFrame, window: timedelta) -> Attribution:
    """Grade every shown item by the outcomes that belong to its exposure (see the module doc)."""
    positions = explode(exposures) if exposures.num_rows else explode_empty()
    outcomes = outcome_events(events)
    known = set(positions["request_id"].unique())
    has_request = outcomes["request_id"].notna() & (outcomes["request_id"].astype(str) != "")
    by_request = outcomes.loc[has_request & outcomes["request_id"].isin(known)]
    unmatched = int((has_request & ~outcomes["request_id"].isin(known)).sum())
    linked = by_request.merge(
        positions[["request_id", "item_id", "ts"]], on=["request_id", "item_id"], suffixes=("", "_shown")
    )
    linked = linked.loc[linked["ts"] >= linked["ts_shown"], ["request_id", "item_id", "grade"]]

    loose = outcomes.loc[~has_request].sort_values("ts")
    shown = positions[["request_id", "user_id", "item_id", "ts"]].sort_values("ts")
    timed = pd.merge_asof(
        loose,
        shown.rename(columns={"request_id": "exposure", "ts": "shown_ts"}),
        left_on="ts",
        right_on="shown_ts",
        by=["user_id", "item_id"],
        direction="backward",
        tolerance=pd.Timedelta(window),
    ).dropna(subset=["exposure"])
    timed = timed.rename(columns={"request_id": "_", "exposure": "request_id"})[
        ["request_id", "item_id", "grade"]
    ]

    graded = pd.concat([linked, timed], ignore_index=True)
    best = graded.groupby(["request_id", "item_id"], as_index=False)["grade"].max()
    positions = positions.merge(best, on=["request_id", "item_id"], how="left")
    positions["grade"] = positions["grade"].fillna(0).astype(np.int64)
    return Attribution(
        positions=positions,
        exposures=int(exposures.num_rows),
        outcomes=len(outcomes),
        matched_by_request=len(linked),
        matched_by_time=len(timed),
        unmatched_request_ids=unmatched,
    )


def explode_empty() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "request_id": pd.Series(dtype=object),
            "ts": pd.Series(dtype="datetime64[ns, UTC]"),
            "user_id": pd.Series(dtype=object),
            "item_id": pd.Series(dtype=object),
            "position": pd.Series(dtype=np.int64),
            "score": pd.Series(dtype=float),
            "model_version": pd.Series(dtype=object),
            "variant": pd.Series(dtype=object),
        }
    )
