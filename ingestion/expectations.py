"""The expectation suites: what Great Expectations checks on typed events and catalog rows.

Each expectation carries its quarantine reason in ``meta["reason"]``; that text is what a rejected row
says, so the suite is the one definition of both the rule and its explanation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import pyarrow as pa
import pyarrow.compute as pc

from aisle.core.schemas import (
    EVENT_REQUIRED,
    EVENT_TYPES,
    MAX_ID_LENGTH,
    MAX_TEXT_LENGTH,
    PRICE_RANGE,
    QUANTITY_RANGE,
    RATING_RANGE,
)

if TYPE_CHECKING:
    import pandas as pd

EVENTS_SUITE: Final = "aisle_events"
CATALOG_SUITE: Final = "aisle_catalog"


def event_expectations() -> list[Any]:
    import great_expectations.expectations as gxe
    from great_expectations.expectations.row_conditions import Column

    lo, hi = RATING_RANGE
    low_price, high_price = PRICE_RANGE
    rating = Column("event_type") == "rating"
    priced = Column("event_type") != "rating"
    out: list[Any] = [
        gxe.ExpectColumnValuesToNotBeNull(column=c, meta={"reason": f"{c} is null"}) for c in EVENT_REQUIRED
    ]
    out += [
        gxe.ExpectColumnValueLengthsToBeBetween(
            column=c,
            min_value=1,
            max_value=MAX_ID_LENGTH,
            meta={"reason": f"{c} empty or over {MAX_ID_LENGTH} chars"},
        )
        for c in ("event_id", "user_id", "item_id")
    ]
    out += [
        gxe.ExpectColumnValueLengthsToBeBetween(
            column=c, max_value=MAX_ID_LENGTH, meta={"reason": f"{c} over {MAX_ID_LENGTH} chars"}
        )
        for c in ("session_id", "request_id")
    ]
    out += [
        gxe.ExpectColumnValueLengthsToBeBetween(
            column=c, max_value=MAX_TEXT_LENGTH, meta={"reason": f"{c} over {MAX_TEXT_LENGTH} chars"}
        )
        for c in ("device", "country")
    ]
    out += [
        gxe.ExpectColumnValuesToBeInSet(
            column="event_type", value_set=list(EVENT_TYPES), meta={"reason": "event_type not in allowed set"}
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column="value", row_condition=rating, meta={"reason": "value missing for rating"}
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="value",
            min_value=lo,
            max_value=hi,
            row_condition=rating,
            meta={"reason": f"value out of range {lo:g}..{hi:g} for rating"},
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="value",
            min_value=low_price,
            max_value=high_price,
            row_condition=priced,
            meta={"reason": f"value out of range {low_price:g}..{high_price:g} for a price"},
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="ts", max_value={"$PARAMETER": "ts_max"}, meta={"reason": "ts in the future"}
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="ts", min_value={"$PARAMETER": "ts_min"}, meta={"reason": "ts before the shop opened"}
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="quantity", min_value=QUANTITY_RANGE[0], meta={"reason": "quantity below 1"}
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="quantity",
            max_value=QUANTITY_RANGE[1],
            meta={"reason": f"quantity over {QUANTITY_RANGE[1]}"},
        ),
        # True/False per row when a catalog is known, null (= not judged) when it is not; see module doc
        gxe.ExpectColumnValuesToBeInSet(
            column="item_in_catalog", value_set=[True], meta={"reason": "item_id not in catalog"}
        ),
    ]
    return out


def catalog_expectations() -> list[Any]:
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectColumnValuesToNotBeNull(column="item_id", meta={"reason": "item_id is null"}),
        gxe.ExpectColumnValuesToBeUnique(column="item_id", meta={"reason": "item_id duplicated"}),
        gxe.ExpectColumnValueLengthsToBeBetween(
            column="item_id",
            min_value=1,
            max_value=MAX_ID_LENGTH,
            meta={"reason": f"item_id empty or over {MAX_ID_LENGTH} chars"},
        ),
        gxe.ExpectColumnValuesToNotBeNull(column="title", meta={"reason": "title is null"}),
        gxe.ExpectColumnValuesToNotBeNull(column="category", meta={"reason": "category is null"}),
        gxe.ExpectColumnValueLengthsToBeBetween(
            column="category", min_value=1, meta={"reason": "category is empty"}
        ),
        gxe.ExpectColumnValuesToBeBetween(column="price", min_value=0, meta={"reason": "price below 0"}),
    ]


# Only the columns the suites look at travel to pandas (the conversion is a large share of the cost).
EVENT_FRAME_COLUMNS: Final = (
    "event_id",
    "event_type",
    "user_id",
    "item_id",
    "ts",
    "value",
    "quantity",
    "session_id",
    "request_id",
    "device",
    "country",
)
CATALOG_FRAME_COLUMNS: Final = ("item_id", "title", "category", "price")


def to_frame(table: pa.Table) -> pd.DataFrame:
    """The pandas view GE validates. Strings stay Arrow-backed (``string[pyarrow]``): converting them to
    Python objects would cost about a quarter of the gate's time. Integers go as int64 because GE 1.24's
    pandas "between" is vectorised only for dtypes equal to ``int``/``float`` and calls Python per row
    for int32."""
    import pandas as pd

    arrays = [pc.cast(col, pa.int64()) if pa.types.is_integer(col.type) else col for col in table.columns]
    arrow_strings = pd.StringDtype("pyarrow")
    return pa.Table.from_arrays(arrays, names=table.column_names).to_pandas(
        types_mapper=lambda t: arrow_strings if t == pa.string() else None
    )
