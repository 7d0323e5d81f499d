"""The event, catalog and user contracts (docs/design.md §4), as Arrow schemas shared by every stage.

Timestamps are UTC with microsecond precision so Spark, DuckDB and Feast agree on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import pyarrow as pa

if TYPE_CHECKING:  # numpy and pandas are imported where grades are computed, not at CLI start-up
    import numpy as np
    import pandas as pd

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
#: Event weights used for affinity, popularity and trending (implicit feedback strength). A rating's
#: weight depends on its stars: see ``RatingScale``.
EVENT_WEIGHTS: Final = {
    "view": 1.0,
    "click": 1.0,
    "wishlist": 2.0,
    "add_to_cart": 3.0,
    "remove_from_cart": 0.0,
    "purchase": 5.0,
}

#: Graded relevance of an interaction (the strongest per user and item counts): the label of ranker
#: training sets and the gain of held-out items in evaluation. Other event types are not positives,
#: except ``rating``, graded by its stars (``RatingScale``).
LABEL_GRADES: Final = {"purchase": 3, "add_to_cart": 2, "wishlist": 2, "view": 1, "click": 1}
RATING: Final = "rating"
#: Event types that say "this shopper engaged with this item": the graded ones and ratings.
INTERACTION_TYPES: Final = (*LABEL_GRADES, RATING)


@dataclass(frozen=True)
class RatingScale:
    """How a ``rating`` event (stars in ``value``, 1–5) counts as an interaction.

    The default: 4–5 stars are a strong interaction, graded and weighted like a purchase (grade 3,
    weight 5); 1–3 stars a weak one, like a view (grade 1, weight 1): a shopper who rated a film
    watched it, even when they did not like it. A rating without stars counts as weak.
    ``AISLE_RATING_STRONG_MIN`` moves the threshold (``Settings.rating_scale``).
    """

    strong_min: float = 4.0
    strong_grade: int = 3
    strong_weight: float = 5.0
    weak_grade: int = 1
    weak_weight: float = 1.0


DEFAULT_RATINGS: Final = RatingScale()


def interaction_grades(
    event_type: pd.Series, value: pd.Series | None = None, ratings: RatingScale = DEFAULT_RATINGS
) -> np.ndarray:
    """Grade of each event as a float array; NaN where the event is not an interaction."""
    import numpy as np

    grades = event_type.map(LABEL_GRADES).to_numpy(dtype=np.float64, na_value=np.nan)
    rated = (event_type == RATING).to_numpy()
    if rated.any():
        strong = _strong(value, ratings)[rated] if value is not None else np.zeros(int(rated.sum()), bool)
        grades[rated] = np.where(strong, ratings.strong_grade, ratings.weak_grade)
    return grades


def interaction_weights(
    event_type: pd.Series, value: pd.Series | None = None, ratings: RatingScale = DEFAULT_RATINGS
) -> np.ndarray:
    """Implicit-feedback weight of each event (``EVENT_WEIGHTS``; ratings by their stars); 0 if none."""
    import numpy as np

    weights = event_type.map(EVENT_WEIGHTS).to_numpy(dtype=np.float64, na_value=0.0)
    rated = (event_type == RATING).to_numpy()
    if rated.any():
        strong = _strong(value, ratings)[rated] if value is not None else np.zeros(int(rated.sum()), bool)
        weights[rated] = np.where(strong, ratings.strong_weight, ratings.weak_weight)
    return weights


def _strong(value: pd.Series, ratings: RatingScale) -> np.ndarray:
    import numpy as np
    import pandas as pd

    stars = pd.to_numeric(value, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return np.nan_to_num(stars, nan=-np.inf) >= ratings.strong_min


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
