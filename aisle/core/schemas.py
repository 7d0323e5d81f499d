"""The event, catalog and user contracts (docs/design.md §4), as Arrow schemas shared by every stage.

Timestamps are UTC with microsecond precision so Spark, DuckDB and Feast agree on them.
"""

from __future__ import annotations

from typing import Final

import pyarrow as pa

SCHEMA_VERSION: Final = 1

EVENT_TYPES: Final = (
    "view",
    "add_to_cart",
    "remove_from_cart",
    "purchase",
    "wishlist",
    "rating",
    "click",
)

TS_TYPE: Final = pa.timestamp("us", tz="UTC")

EVENT_SCHEMA: Final = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("event_type", pa.string(), nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("ts", TS_TYPE, nullable=False),
        pa.field("session_id", pa.string()),
        pa.field("value", pa.float64()),
        pa.field("quantity", pa.int32()),
        pa.field("device", pa.string()),
        pa.field("country", pa.string()),
        pa.field("request_id", pa.string()),
    ]
)
#: Event weights used for affinity, popularity and trending (implicit feedback strength).
EVENT_WEIGHTS: Final = {
    "view": 1.0,
    "click": 1.0,
    "wishlist": 2.0,
    "add_to_cart": 3.0,
    "remove_from_cart": 0.0,
    "purchase": 5.0,
    "rating": 0.0,
}

#: Graded relevance of an interaction (the strongest per user and item counts): the label of ranker
#: training sets and the gain of held-out items in evaluation. Other event types are not positives.
LABEL_GRADES: Final = {"purchase": 3, "add_to_cart": 2, "wishlist": 2, "view": 1, "click": 1}

EVENT_REQUIRED: Final = ("event_id", "event_type", "user_id", "item_id", "ts")
EVENT_COLUMNS: Final = tuple(EVENT_SCHEMA.names)

CATALOG_SCHEMA: Final = pa.schema(
    [
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("title", pa.string()),
        pa.field("category", pa.string()),  # path "A>B>C"
        pa.field("brand", pa.string()),
        pa.field("price", pa.float64()),
        pa.field("in_stock", pa.bool_()),
        pa.field("created_at", TS_TYPE),
        pa.field("description", pa.string()),
    ]
)
CATALOG_COLUMNS: Final = tuple(CATALOG_SCHEMA.names)

USER_SCHEMA: Final = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("created_at", TS_TYPE),
        pa.field("country", pa.string()),
        pa.field("device", pa.string()),
    ]
)

#: Longest id accepted anywhere; longer ones are quarantined rather than truncated.
MAX_ID_LENGTH: Final = 128
#: Longest device or country text accepted.
MAX_TEXT_LENGTH: Final = 64
#: ``value`` per event type: the stars of a rating; a price (in the shop's currency) for anything else.
RATING_RANGE: Final = (1.0, 5.0)
PRICE_RANGE: Final = (0.0, 1_000_000.0)
#: Items per purchase or cart event.
QUANTITY_RANGE: Final = (1, 1_000)

#: Quarantined rows: the row as text for people (the original line or message; JSON of the values read
#: where the source has no lines, as in Parquet), why it was rejected, where it came from, which stage
#: (read: not even a row; parse: uncoercible value; validate: failed expectations), the exact original
#: bytes where the source has them, and the row's position in the batch as read.
REJECTED_SCHEMA: Final = pa.schema(
    [
        pa.field("row", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("source", pa.string()),
        pa.field("stage", pa.string()),
        pa.field("raw", pa.binary()),
        pa.field("position", pa.int64()),
    ]
)

#: What the service showed: one row per ``/recommend`` response (Kafka topic ``exposures``, then the lake's
#: ``exposures`` area). ``items`` are in the order shown (position = index + 1) with their ``scores``;
#: ``variant`` and ``experiment`` say which arm of an A/B test served it (``variant`` is ``default`` outside
#: any experiment). Outcomes are events that carry the ``request_id``, or the same shopper and item soon
#: after (see ``monitoring.attribution``).
EXPOSURE_SCHEMA: Final = pa.schema(
    [
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("ts", TS_TYPE, nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("items", pa.list_(pa.string()), nullable=False),
        pa.field("scores", pa.list_(pa.float64())),
        pa.field("model_version", pa.string()),
        pa.field("variant", pa.string()),
        pa.field("experiment", pa.string()),
        pa.field("latency_ms", pa.float64()),
        pa.field("degraded", pa.bool_()),
        # A/B experiments: which version of the experiment, whether the answer was a fallback after a
        # failure (the error-rate guardrail), and where the shopper asked from (targeting, segments)
        pa.field("experiment_version", pa.int32()),
        pa.field("error", pa.bool_()),
        pa.field("device", pa.string()),
        pa.field("country", pa.string()),
    ]
)
EXPOSURE_REQUIRED: Final = ("request_id", "ts", "user_id", "items")
DEFAULT_VARIANT: Final = "default"
