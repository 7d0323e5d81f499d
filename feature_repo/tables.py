"""The offline feature tables: what the Spark jobs write and what Feast reads. One contract, two sides.

Every table is Parquet under ``$AISLE_HOME/features/<name>/`` (partitioned by ``snapshot_date`` where it
is a daily snapshot), timestamps in microseconds UTC. Snapshot semantics, which make point-in-time joins
honest: a row with ``event_timestamp = T`` holds only what was known at T; it is computed from events
with ``ts < T``. Daily snapshots are stamped at the *end* of their day (next midnight) and exist for the
entities active that day; Feast picks the latest row at or before a label's timestamp (within the TTL).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pyarrow as pa

TS: Final = pa.timestamp("us", tz="UTC")
WINDOWS: Final = (1, 7, 30)  # days
TRENDING_HALF_LIFE_DAYS: Final = 3.0
# Bounds of the user_recent view's lists (feature_repo/user_recent.py defines what they hold).
RECENT_ITEMS: Final = 50  # distinct items of the newest interactions, with their types and times
SEEN_ITEMS: Final = 200  # distinct items of the newest events of any type
PURCHASED_ITEMS: Final = 100  # distinct items of the newest purchases
COOCCURRENCE_TOP_K: Final = 20

USER_FEATURES: Final = "user_features"
ITEM_FEATURES: Final = "item_features"
USER_CATEGORY: Final = "user_category_affinity"
ITEM_COOCCURRENCE: Final = "item_cooccurrence"


def _counts(prefix: str) -> list[pa.Field]:
    return [pa.field(f"{prefix}_{w}d", pa.int64()) for w in WINDOWS]


USER_FEATURES_SCHEMA: Final = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("event_timestamp", TS, nullable=False),  # end of the snapshot day
        *_counts("views"),
        *_counts("carts"),
        *_counts("purchases"),
        pa.field("days_since_last_purchase", pa.float64()),  # null: never bought
        pa.field("avg_price_paid_30d", pa.float64()),  # null: no purchase in 30 days
        pa.field("purchase_rate_30d", pa.float64()),  # purchases / views over 30 days, 0 when no views
        pa.field("fav_category_30d", pa.string()),  # top-level category with most events in 30 days
        pa.field("fav_brand_30d", pa.string()),
        pa.field("snapshot_date", pa.date32()),
    ]
)

ITEM_FEATURES_SCHEMA: Final = pa.schema(
    [
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("event_timestamp", TS, nullable=False),
        *_counts("views"),
        *_counts("carts"),
        *_counts("purchases"),
        pa.field("conversion_rate_30d", pa.float64()),  # purchases / views over 30 days, 0 when no views
        pa.field("trending_score", pa.float64()),  # sum over events of weight * 0.5^(age_days / half-life)
        pa.field("price", pa.float64()),
        pa.field("category", pa.string()),  # full path A>B>C
        pa.field("top_category", pa.string()),  # A
        pa.field("brand", pa.string()),
        pa.field("in_stock", pa.bool_()),
        pa.field("age_days", pa.float64()),  # snapshot time - catalog created_at; null when unknown
        pa.field("snapshot_date", pa.date32()),
    ]
)

USER_CATEGORY_SCHEMA: Final = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("top_category", pa.string(), nullable=False),
        pa.field("event_timestamp", TS, nullable=False),
        pa.field("affinity_30d", pa.float64()),  # weighted events in that category / all weighted events
        pa.field("snapshot_date", pa.date32()),
    ]
)

# Not a daily snapshot: one table per build over the whole lake window (candidate generation input).
ITEM_COOCCURRENCE_SCHEMA: Final = pa.schema(
    [
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("event_timestamp", TS, nullable=False),  # build time (max event ts seen + 1 µs)
        pa.field("bought_together", pa.list_(pa.string())),  # top-K co-purchased items, best first
        pa.field("bought_together_scores", pa.list_(pa.float64())),
        pa.field("viewed_together", pa.list_(pa.string())),  # top-K co-viewed in the same session
        pa.field("viewed_together_scores", pa.list_(pa.float64())),
    ]
)


# The user_recent view: pushed online by the stream consumer, and written offline from the lake by the
# feature build (one row per user, stamped at their newest event). feature_repo/user_recent.py says what
# each column holds and computes it both ways; times are µs since the epoch, UTC; lists newest first.
USER_RECENT: Final = "user_recent"
USER_RECENT_SCHEMA: Final = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("event_timestamp", TS, nullable=False),  # ts of the newest event folded in
        pa.field("last_event_us", pa.int64()),  # the same instant, as a feature (Feast reads it back)
        pa.field("recent_items", pa.list_(pa.string())),  # at most RECENT_ITEMS
        pa.field("recent_types", pa.list_(pa.string())),  # type of each item's latest interaction
        pa.field("recent_ts_us", pa.list_(pa.int64())),  # time of each item's latest interaction
        pa.field("seen_items", pa.list_(pa.string())),  # at most SEEN_ITEMS
        pa.field("purchased_items", pa.list_(pa.string())),  # at most PURCHASED_ITEMS
        pa.field("events_total", pa.int64()),
        pa.field("views_total", pa.int64()),  # view + click
        pa.field("carts_total", pa.int64()),
        pa.field("purchases_total", pa.int64()),
        pa.field("session_id", pa.string()),
        pa.field("session_events", pa.int64()),
        pa.field("session_views", pa.int64()),
        pa.field("session_carts", pa.int64()),
    ]
)

SCHEMAS: Final = {
    USER_FEATURES: USER_FEATURES_SCHEMA,
    ITEM_FEATURES: ITEM_FEATURES_SCHEMA,
    USER_CATEGORY: USER_CATEGORY_SCHEMA,
    ITEM_COOCCURRENCE: ITEM_COOCCURRENCE_SCHEMA,
}


def table_dir(features_root: Path, name: str) -> Path:
    """``features_root`` is ``settings.paths.features``."""
    return features_root / name
