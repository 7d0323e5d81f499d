"""The tables drift is measured on, one per concern, cut to a time window.

* events: one row per lake event — event type, device, country, log price, the item's top category and age,
  and how many distinct items its session touched (so a change in browsing depth shows as drift);
* user and item features: the daily snapshot rows the Spark jobs wrote for the days in the window;
* served scores: one row per shown item — its score, position and list length.

Every frame is sampled to ``max_rows`` with a fixed seed (drift statistics are stable long before a
million rows, and the report's cost grows with rows), and reports how many rows it was cut from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ingestion.lake import EventLake


@dataclass(frozen=True)
class Columns:
    """Which columns of a concern's frame are compared, and how."""

    numerical: tuple[str, ...]
    categorical: tuple[str, ...]

    @property
    def all(self) -> tuple[str, ...]:
        return (*self.numerical, *self.categorical)


EVENT_COLUMNS: Final = Columns(
    numerical=("log_price", "items_per_session", "item_age_days"),
    categorical=("event_type", "device", "country", "top_category"),
)
USER_FEATURE_COLUMNS: Final = Columns(
    numerical=(
        "views_7d",
        "views_30d",
        "carts_30d",
        "purchases_30d",
        "days_since_last_purchase",
        "avg_price_paid_30d",
        "purchase_rate_30d",
    ),
    categorical=("fav_category_30d",),
)
ITEM_FEATURE_COLUMNS: Final = Columns(
    numerical=(
        "views_7d",
        "views_30d",
        "carts_30d",
        "conversion_rate_30d",
        "trending_score",
        "price",
        "age_days",
    ),
    categorical=("top_category", "in_stock"),
)
SCORE_COLUMNS: Final = Columns(numerical=("score", "position", "list_length"), categorical=("degraded",))
FEATURE_TABLES: Final = {"user_features": USER_FEATURE_COLUMNS, "item_features": ITEM_FEATURE_COLUMNS}
#: Each frame's row time (not compared): slices the reference for the day-to-day noise floor.
SLICE_TIME: Final = "_time"
#: Events whose ``value`` is not a price.
NOT_PRICED: Final = ("rating",)


@dataclass
class Frame:
    """A window's rows (sampled) and how many there were before sampling."""

    data: pd.DataFrame
    rows: int
    columns: Columns
    notes: list[str] = field(default_factory=list)


def sample(frame: pd.DataFrame, max_rows: int, seed: int = 0) -> pd.DataFrame:
    if len(frame) <= max_rows:
        return frame.reset_index(drop=True)
    return frame.sample(n=max_rows, random_state=seed).reset_index(drop=True)


def top_category(category: pd.Series) -> pd.Series:
    """``A`` of an ``A>B>C`` path."""
    return category.astype("string").str.split(">").str[0].str.strip()


def catalog_frame(lake_root: Path) -> pd.DataFrame:
    """item_id → top_category, created_at (empty when the lake holds no catalog)."""
    return catalog_columns(EventLake(lake_root).read_catalog())


def catalog_columns(table: pa.Table | None) -> pd.DataFrame:
    if table is None or table.num_rows == 0:
        return pd.DataFrame(
            {"top_category": pd.Series(dtype="string"), "created_at": pd.Series(dtype="object")}
        )
    frame = table.select(["item_id", "category", "created_at"]).to_pandas()
    frame["top_category"] = top_category(frame["category"])
    return frame.set_index(frame["item_id"].astype(str))[["top_category", "created_at"]]


def event_columns(events: pd.DataFrame, catalog: pd.DataFrame) -> pd.DataFrame:
    """The columns of :data:`EVENT_COLUMNS` for lake events (``catalog`` as from :func:`catalog_frame`)."""
    out = pd.DataFrame(
        {
            "event_type": events["event_type"].astype("string"),
            "device": events["device"].astype("string").fillna("unknown"),
            "country": events["country"].astype("string").fillna("unknown"),
        }
    )
    # prices are compared in log space: a rise of x% moves cheap and dear items alike, and the
    # Wasserstein distance is not dominated by the few laptops among the lipsticks
    price = events["value"].where(~events["event_type"].isin(NOT_PRICED))
    out["log_price"] = np.log(price.where(price > 0))
    # a session's depth: distinct items it touched in the window (no session id = a session of one)
    alone = pd.Series("__none__" + events.index.astype(str), index=events.index)
    session = events["session_id"].astype("string").fillna(alone)
    out["items_per_session"] = events.groupby(session)["item_id"].transform("nunique").astype(float)
    item = events["item_id"].astype(str)
    out["top_category"] = item.map(catalog["top_category"]).astype("string").fillna("unknown")
    created = pd.to_datetime(item.map(catalog["created_at"]), utc=True)
    out["item_age_days"] = (pd.to_datetime(events["ts"], utc=True) - created).dt.total_seconds() / 86_400
    out[SLICE_TIME] = pd.to_datetime(events["ts"], utc=True)
    return out


def event_frame(
    lake_root: Path, start: datetime, end: datetime, max_rows: int, catalog: pd.DataFrame | None = None
) -> Frame:
    """Lake events in ``[start, end)`` with the derived columns of :data:`EVENT_COLUMNS`."""
    columns = ["event_type", "user_id", "item_id", "ts", "session_id", "value", "device", "country"]
    events = EventLake(lake_root).read_range("ts", start, end, columns=columns).to_pandas()
    out = event_columns(events, catalog_frame(lake_root) if catalog is None else catalog)
    return Frame(data=sample(out, max_rows), rows=len(out), columns=EVENT_COLUMNS)


def feature_frame(features_root: Path, name: str, start: datetime, end: datetime, max_rows: int) -> Frame:
    """Snapshot rows of feature table ``name`` stamped in ``(start, end]`` (a day's snapshot is stamped
    at the midnight that ends it, so the window's days are exactly its snapshots)."""
    import pyarrow.dataset as ds

    from feature_repo.compute.storage import read_table

    columns = FEATURE_TABLES[name]
    first: date = (start - timedelta(days=1)).date()
    last: date = end.date()
    day = ds.field("snapshot_date")
    where = (day >= pa.scalar(first, pa.date32())) & (day <= pa.scalar(last, pa.date32()))
    table = read_table(features_root, name, where=where)
    ts = table["event_timestamp"]
    kind = ts.type
    keep = pc.and_(pc.greater(ts, pa.scalar(start, kind)), pc.less_equal(ts, pa.scalar(end, kind)))
    frame = table.filter(keep).select([*columns.all, "event_timestamp"]).to_pandas()
    frame = frame.rename(columns={"event_timestamp": SLICE_TIME})
    # a day's snapshot is stamped at the midnight that ends it: slice it with its own day
    frame[SLICE_TIME] = pd.to_datetime(frame[SLICE_TIME], utc=True) - pd.Timedelta(microseconds=1)
    for col in columns.categorical:
        frame[col] = frame[col].astype("string").fillna("unknown")
    return Frame(data=sample(frame, max_rows), rows=len(frame), columns=columns)


def score_frame(exposures: pa.Table, max_rows: int) -> Frame:
    """One row per shown item with a score: score, position (1 = top), list length, degraded."""
    if exposures.num_rows == 0 or "scores" not in exposures.column_names:
        empty = pd.DataFrame({c: pd.Series(dtype="float64") for c in SCORE_COLUMNS.numerical})
        empty["degraded"] = pd.Series(dtype="string")
        return Frame(data=empty, rows=0, columns=SCORE_COLUMNS)
    scored = exposures.filter(pc.invert(pc.is_null(exposures["scores"])))
    lengths = pc.list_value_length(scored["scores"]).to_numpy(zero_copy_only=False).astype(np.int64)
    flat = pc.list_flatten(scored["scores"]).to_numpy(zero_copy_only=False).astype(float)
    starts = np.repeat(np.cumsum(np.r_[0, lengths[:-1]]), lengths)
    degraded = scored["degraded"].fill_null(False).to_numpy(zero_copy_only=False)
    frame = pd.DataFrame(
        {
            "score": flat,
            "position": (np.arange(len(flat)) - starts + 1).astype(float),
            "list_length": np.repeat(lengths, lengths).astype(float),
            "degraded": pd.Series(np.repeat(degraded, lengths))
            .map({True: "yes", False: "no"})
            .astype("string"),
        }
    )
    shown_at = scored["ts"].to_pandas().to_numpy()
    frame[SLICE_TIME] = pd.to_datetime(np.repeat(shown_at, lengths), utc=True)
    return Frame(data=sample(frame, max_rows), rows=len(frame), columns=SCORE_COLUMNS)
