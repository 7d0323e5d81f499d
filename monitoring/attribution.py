"""Exposures joined with outcomes: which shown item led to what, once per exposure.

An outcome is a positive event (``LABEL_GRADES``: view/click 1, cart/wishlist 2, purchase 3), each
``event_id`` once. It belongs to an exposure when

1. it carries that exposure's ``request_id`` (the service put it in the links it rendered) — whatever
   the item, because the answer led the shopper there (``on_list`` says whether the item was shown), or
   else
2. the same shopper touched a shown item at most ``window`` after being shown it; with several such
   exposures the latest one before the event gets it (last touch).

So every event belongs to one exposure at most, and every event with a ``request_id`` is matched to
exactly one exposure or reported unmatched (``counts()["reconciled"]``), never guessed. Per (exposure,
shown item) the strongest outcome is the grade (recommendation quality); per exposure, which kinds of
event followed and the revenue (the A/B analysis, :func:`exposure_outcomes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from aisle.core.schemas import DEFAULT_VARIANT, EXPOSURE_SCHEMA, LABEL_GRADES

#: What the join reads of an event, and what it records of each attributed one.
OUTCOME_COLUMNS = ["event_id", "event_type", "user_id", "item_id", "ts", "request_id", "value", "quantity"]
LINK_COLUMNS = [
    "request_id",
    "event_id",
    "event_type",
    "item_id",
    "ts",
    "grade",
    "value",
    "quantity",
    "how",
    "on_list",
]


@dataclass
class Attribution:
    """One row per shown item (``positions``) with its outcome grade, every attributed event (``links``)
    and the join's own counts."""

    positions: (
        pd.DataFrame
    )  # request_id, ts, user_id, item_id, position, score, model_version, variant, grade
    links: pd.DataFrame  # request_id, event_id, event_type, item_id, ts, value, quantity, how, on_list
    exposures: int
    outcomes: int  # positive events considered (each event_id once)
    with_request_id: int
    matched_by_request: int
    matched_off_list: int  # ... of which on an item the answer did not show
    matched_by_time: int
    unmatched_request_ids: int

    def counts(self) -> dict[str, int | bool]:
        return {
            "exposures": self.exposures,
            "shown_items": len(self.positions),
            "outcomes": self.outcomes,
            "outcomes_with_request_id": self.with_request_id,
            "matched_by_request_id": self.matched_by_request,
            "matched_off_list": self.matched_off_list,
            "matched_by_user_item_time": self.matched_by_time,
            "unmatched_request_ids": self.unmatched_request_ids,
            "not_attributed": self.outcomes - self.with_request_id - self.matched_by_time,
            # every outcome with a request id is matched to exactly one exposure or reported unmatched
            "reconciled": self.with_request_id == self.matched_by_request + self.unmatched_request_ids,
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

    take = pa.array(rows)

    def column(name: str, default: str | None = None) -> np.ndarray:
        values = exposures[name].take(take)  # repeat in Arrow: no Python objects per row
        if default is not None:
            values = pc.fill_null(values, default)
        return values.to_numpy(zero_copy_only=False)

    micros = pc.cast(exposures["ts"].take(take), pa.timestamp("us", tz="UTC")).cast(pa.int64())
    return pd.DataFrame(
        {
            "request_id": column("request_id"),
            "ts": pd.to_datetime(micros.to_numpy(zero_copy_only=False), unit="us", utc=True).astype(
                "datetime64[ns, UTC]"
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
    """Positive events with their grade (``event_type`` → ``LABEL_GRADES``); others are not outcomes.

    An event delivered twice (the same ``event_id``) counts once.
    """
    grade = events["event_type"].map(LABEL_GRADES)
    keep = [c for c in OUTCOME_COLUMNS if c in events.columns]
    out = events.loc[grade.notna(), keep].copy()
    out["grade"] = grade.dropna().astype(np.int64)
    for column, default in (("event_id", None), ("request_id", None), ("value", np.nan), ("quantity", 1)):
        if column not in out.columns:
            out[column] = default
    if out["event_id"].notna().any():
        out = out.loc[~(out["event_id"].notna() & out["event_id"].duplicated())]
    out["ts"] = as_ns(out["ts"])
    out["user_id"] = out["user_id"].astype(str)
    out["item_id"] = out["item_id"].astype(str)
    out["request_id"] = out["request_id"].where(out["request_id"].astype(str) != "")
    return out.reset_index(drop=True)


def attribute(exposures: pa.Table, events: pd.DataFrame, window: timedelta) -> Attribution:
    """Attribute outcome events to exposures (see the module doc) and grade every shown item."""
    positions = explode(exposures) if exposures.num_rows else explode_empty()
    outcomes = outcome_events(events)
    known = set(positions["request_id"].unique())
    has_request = outcomes["request_id"].notna()
    by_request = outcomes.loc[has_request & outcomes["request_id"].isin(known)]
    unmatched = int((has_request & ~outcomes["request_id"].isin(known)).sum())
    shown_pairs = positions[["request_id", "item_id"]].drop_duplicates().assign(on_list=True)
    linked = by_request.merge(shown_pairs, on=["request_id", "item_id"], how="left")
    linked["on_list"] = linked["on_list"].astype("boolean").fillna(False).astype(bool)
    linked["how"] = "request_id"

    loose = outcomes.loc[~has_request].sort_values("ts")
    shown = positions[["request_id", "user_id", "item_id", "ts"]].sort_values("ts")
    timed = pd.merge_asof(
        loose.drop(columns=["request_id"]),
        shown.rename(columns={"ts": "shown_ts"}),
        left_on="ts",
        right_on="shown_ts",
        by=["user_id", "item_id"],
        direction="backward",
        tolerance=pd.Timedelta(window),
    ).dropna(subset=["request_id"])
    timed = timed.drop(columns=["shown_ts"]).assign(on_list=True, how="window")

    links = pd.concat([linked, timed], ignore_index=True)[LINK_COLUMNS]
    best = links.loc[links["on_list"]].groupby(["request_id", "item_id"], as_index=False)["grade"].max()
    positions = positions.merge(best, on=["request_id", "item_id"], how="left")
    positions["grade"] = positions["grade"].fillna(0).astype(np.int64)
    return Attribution(
        positions=positions,
        links=links,
        exposures=int(exposures.num_rows),
        outcomes=len(outcomes),
        with_request_id=int(has_request.sum()),
        matched_by_request=len(linked),
        matched_off_list=int((~linked["on_list"]).sum()),
        matched_by_time=len(timed),
        unmatched_request_ids=unmatched,
    )


def exposure_outcomes(exposures: pa.Table, attribution: Attribution) -> pd.DataFrame:
    """One row per exposure with what followed it: the A/B analysis's input.

    ``clicked``/``carted``/``purchased`` say whether any attributed event of that type followed the
    answer (a flag, so a repeated click is one click-through); ``revenue`` sums value × quantity of its
    attributed purchases, each event once.
    """
    frame = exposures.select([c for c in EXPOSURE_SCHEMA.names if c not in ("items", "scores")]).to_pandas()
    frame = frame.drop_duplicates("request_id")
    frame["ts"] = as_ns(frame["ts"]).array
    links = attribution.links
    by_type = (
        links.assign(n=1).pivot_table(index="request_id", columns="event_type", values="n", aggfunc="sum")
        if len(links)
        else pd.DataFrame(index=pd.Index([], name="request_id"))
    )
    purchases = links.loc[links["event_type"] == "purchase"]
    revenue = (
        (purchases["value"].fillna(0.0) * purchases["quantity"].fillna(1))
        .groupby(purchases["request_id"])
        .sum()
    )
    for kind, column in (("click", "clicks"), ("add_to_cart", "carts"), ("purchase", "purchases")):
        counts = by_type[kind] if kind in by_type.columns else pd.Series(dtype=float)
        frame[column] = frame["request_id"].map(counts).fillna(0).astype(np.int64)
    frame["clicked"] = frame["clicks"] > 0
    frame["carted"] = frame["carts"] > 0
    frame["purchased"] = frame["purchases"] > 0
    frame["revenue"] = frame["request_id"].map(revenue).fillna(0.0).astype(float)
    frame["variant"] = frame["variant"].fillna(DEFAULT_VARIANT).astype(str)
    frame["degraded"] = frame["degraded"].astype("boolean").fillna(False).astype(bool)
    frame["error"] = frame["error"].astype("boolean").fillna(False).astype(bool)
    return frame.reset_index(drop=True)


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
