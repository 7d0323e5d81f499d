"""The ranker's inputs from Feast: point-in-time training sets and as-of snapshots for scoring.

Training rows get features through Feast's point-in-time join (each label sees only feature rows
stamped at or before its own time), and scoring at a cutoff asks Feast for the features "as of" that
cutoff, so offline evaluation never peeks past the holdout boundary. Serving reads the same feature
names from the online store; the derived pair columns are computed by one function for all three.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

from aisle.core.settings import Settings
from feature_repo.tables import ITEM_FEATURES, USER_FEATURES, WINDOWS
from models.wide_deep.model import RankerSpec

UF: Final = f"{USER_FEATURES}__"
IF: Final = f"{ITEM_FEATURES}__"

_COUNTS: Final = tuple(f"{kind}_{w}d" for kind in ("views", "carts", "purchases") for w in WINDOWS)
_USER_RATES: Final = ("days_since_last_purchase", "avg_price_paid_30d", "purchase_rate_30d")
USER_NUMERIC: Final = tuple(f"{UF}{name}" for name in (*_COUNTS, *_USER_RATES))
USER_CATEGORICAL: Final = (f"{UF}fav_category_30d", f"{UF}fav_brand_30d")
ITEM_NUMERIC: Final = tuple(
    f"{IF}{name}" for name in (*_COUNTS, "conversion_rate_30d", "trending_score", "price", "age_days")
)
ITEM_CATEGORICAL: Final = (f"{IF}top_category", f"{IF}brand")
#: Derived user x item columns: does the item match the user's habits?
PAIR_NUMERIC: Final = ("same_category", "same_brand", "price_vs_paid", "in_stock")

#: What the policy computes for every candidate (``HybridPolicy.pair_scores``): the retrieval scores and
#: the recency signals of ``models.policy_signals`` (the ranker weighs recency against taste with them).
POLICY_SIGNALS: Final = (
    "tower_score",
    "cooc_score",
    "sequence_score",
    "neighbour_rank",
    "days_since_last_event",
    "pop_hl_1d",
    "pop_hl_7d",
    "pop_hl_30d",
    "pop_hl_180d",
    "item_age_days",
)

#: No id embeddings: with a few labels per user and item they memorise the label window (measured:
#: candidate AUC 0.54 with ids vs 0.63 without on a 83k-event shop); categories and brands generalise.
RANKER_SPEC: Final = RankerSpec(
    ids=(),
    categorical=(*USER_CATEGORICAL, *ITEM_CATEGORICAL),
    numeric=(*USER_NUMERIC, *ITEM_NUMERIC, *PAIR_NUMERIC, *POLICY_SIGNALS),
    crosses=((f"{UF}fav_category_30d", f"{IF}top_category"), (f"{UF}fav_brand_30d", f"{IF}brand")),
)


def add_pair_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Derived columns from a frame that already holds the user and item feature columns (in place)."""
    columns = pair_columns(
        fav_category=frame[f"{UF}fav_category_30d"].to_numpy(),
        top_category=frame[f"{IF}top_category"].to_numpy(),
        fav_brand=frame[f"{UF}fav_brand_30d"].to_numpy(),
        brand=frame[f"{IF}brand"].to_numpy(),
        paid=frame[f"{UF}avg_price_paid_30d"].to_numpy(),
        price=frame[f"{IF}price"].to_numpy(),
        in_stock=frame[f"{IF}in_stock"].to_numpy() if f"{IF}in_stock" in frame else None,
    )
    for name, values in columns.items():
        frame[name] = values
    return frame


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1.0 where both values are present and equal as text, else 0.0 (a missing value matches nothing)."""
    present = ~(pd.isna(a) | pd.isna(b))
    text_a = np.where(present, a, "").astype(str)
    text_b = np.where(present, b, "").astype(str)
    return ((text_a == text_b) & present).astype(np.float64)


def numbers_or_nan(values: np.ndarray) -> np.ndarray:
    """float64, NaN where a value is missing or not a number (``pd.to_numeric(..., errors="coerce")``)."""
    if values.dtype.kind in "fiu":
        return values.astype(np.float64)
    return pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(dtype=np.float64)


def pair_columns(
    *,
    fav_category: np.ndarray,
    top_category: np.ndarray,
    fav_brand: np.ndarray,
    brand: np.ndarray,
    paid: np.ndarray,
    price: np.ndarray,
    in_stock: np.ndarray | None,
) -> dict[str, np.ndarray]:
    """Does the item match the user's habits? One definition for training sets and serving, in numpy
    (per request it runs on ~150 candidate rows, where pandas' per-column overhead dominated).

    ``same_category`` / ``same_brand``: the user's favourite equals the item's (missing never matches);
    ``price_vs_paid``: log((price + 1) / (paid + 1)), 0 when either is unknown; ``in_stock``: 1.0 unless
    the item is known to be out of stock.
    """
    n = len(top_category)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.log((numbers_or_nan(price) + 1.0) / (numbers_or_nan(paid) + 1.0))
    stock = np.ones(n, dtype=np.float64)
    if in_stock is not None:
        known = ~pd.isna(in_stock)
        stock[known] = np.asarray(in_stock[known], dtype=bool).astype(np.float64)
    return {
        "same_category": _same(fav_category, top_category),
        "same_brand": _same(fav_brand, brand),
        "price_vs_paid": np.where(np.isfinite(ratio), ratio, 0.0),
        "in_stock": stock,
    }


def _user_columns() -> list[str]:
    return [*USER_NUMERIC, *USER_CATEGORICAL]


def _item_columns() -> list[str]:
    return [*ITEM_NUMERIC, *ITEM_CATEGORICAL, f"{IF}in_stock", f"{IF}category"]


def snapshot_features(
    settings: Settings, user_ids: Sequence[str], item_ids: Sequence[str], as_of: pd.Timestamp
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """User and item features as Feast knew them at ``as_of`` (offline store, point in time).

    One Feast call serves both sides: users and items are zipped into a single entity frame (padded
    to the longer list), which costs max(users, items) rows instead of users × items pairs.
    """
    from feature_repo.training_sets import training_set

    users = list(dict.fromkeys(str(u) for u in user_ids)) or ["__none__"]
    items = list(dict.fromkeys(str(i) for i in item_ids)) or ["__none__"]
    n = max(len(users), len(items))
    entity = pd.DataFrame(
        {
            "user_id": users + [users[0]] * (n - len(users)),
            "item_id": items + [items[0]] * (n - len(items)),
            "event_timestamp": pd.Timestamp(as_of).tz_convert("UTC")
            if pd.Timestamp(as_of).tzinfo
            else pd.Timestamp(as_of, tz="UTC"),
        }
    )
    joined = training_set(settings, entity, feature_service="ranking")
    user_df = _ensure(joined, _user_columns())[["user_id", *_user_columns()]].drop_duplicates("user_id")
    item_df = _ensure(joined, _item_columns())[["item_id", *_item_columns()]].drop_duplicates("item_id")
    return user_df.set_index("user_id"), item_df.set_index("item_id")


def _ensure(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    for col in columns:
        if col not in frame.columns:
            frame[col] = None
    return frame


@dataclass(frozen=True)
class ColumnTable:
    """A feature frame indexed by id, as plain numpy columns: what :func:`pair_frame` gathers from.
    Converting a frame's columns costs more than gathering ~150 rows from them, so a policy converts
    its item features once (:meth:`from_frame`) instead of per request."""

    index: pd.Index
    columns: dict[str, np.ndarray]

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> ColumnTable:
        return cls(frame.index, {col: frame[col].to_numpy() for col in frame.columns})


def pair_frame(
    pairs: pd.DataFrame, user_features: pd.DataFrame | ColumnTable, item_features: pd.DataFrame | ColumnTable
) -> pd.DataFrame:
    """(user_id, item_id) rows joined to per-user and per-item features (indexed by id) + pair columns.

    Unknown users or items get null features, which the ranker treats as missing, never an error.
    """
    return pd.DataFrame(pair_feature_columns(pairs, user_features, item_features))


def pair_feature_columns(
    pairs: pd.DataFrame,
    user_features: pd.DataFrame | ColumnTable,
    item_features: pd.DataFrame | ColumnTable,
    extra: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """:func:`pair_frame` as numpy columns (+ ``extra`` columns, e.g. retrieval scores): what the ranker
    scores per request. A request scores ~150 pairs, where building a DataFrame (reindex, concat, column
    inserts, block consolidation) costs more than the join and the network together."""
    users = pairs["user_id"].to_numpy()
    items = pairs["item_id"].to_numpy()
    columns: dict[str, Any] = {"user_id": users, "item_id": items}
    columns.update(_gathered(user_features, users))
    columns.update(_gathered(item_features, items))
    for col in (*_user_columns(), *_item_columns()):
        columns.setdefault(col, np.full(len(pairs), None, dtype=object))
    columns.update(
        pair_columns(
            fav_category=columns[f"{UF}fav_category_30d"],
            top_category=columns[f"{IF}top_category"],
            fav_brand=columns[f"{UF}fav_brand_30d"],
            brand=columns[f"{IF}brand"],
            paid=columns[f"{UF}avg_price_paid_30d"],
            price=columns[f"{IF}price"],
            in_stock=columns[f"{IF}in_stock"],
        )
    )
    columns.update(extra or {})
    return columns


def _gathered(features: pd.DataFrame | ColumnTable, keys: np.ndarray) -> dict[str, np.ndarray]:
    """Each column of ``features`` (indexed by id) at ``keys``; NaN where a key is not in the index."""
    table = features if isinstance(features, ColumnTable) else ColumnTable.from_frame(features)
    position = table.index.get_indexer(keys)
    missing = position < 0
    safe = np.where(missing, 0, position)
    out: dict[str, np.ndarray] = {}
    for col, values in table.columns.items():
        if values.dtype.kind not in "fc":
            values = values.astype(object)
        taken = np.full(len(keys), np.nan, dtype=values.dtype) if not len(values) else values[safe]
        if missing.any():
            taken = taken.astype(np.float64 if taken.dtype.kind in "fc" else object)
            taken[missing] = np.nan
        out[col] = taken
    return out


def ranker_training_set(settings: Settings, labels: pd.DataFrame) -> pd.DataFrame:
    """Point-in-time join of graded labels with the ranking feature service, plus pair columns."""
    from feature_repo.training_sets import training_set

    joined = training_set(settings, labels, feature_service="ranking")
    joined = _ensure(joined, [*_user_columns(), *_item_columns()])
    return add_pair_features(joined)


def feature_coverage(frame: pd.DataFrame, columns: Sequence[str] = USER_NUMERIC + ITEM_NUMERIC) -> float:
    """Share of non-null feature cells: a training set of mostly nulls means features were not built."""
    present = [c for c in columns if c in frame.columns]
    if not present or frame.empty:
        return 0.0
    return float(frame[present].notna().to_numpy().mean())
