"""Bring your own history: map an interactions export (user_id, item_id, timestamp[, rating | event_type])
into the event schema, so it goes through the same validation gate as everything else.

Event ids are derived from the row's content, so importing the same file twice adds nothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aisle.core.errors import BadInput
from aisle.core.schemas import CATALOG_COLUMNS, EVENT_TYPES

REQUIRED = ("user_id", "item_id", "timestamp")
ALIASES = {
    "user": "user_id",
    "userid": "user_id",
    "item": "item_id",
    "itemid": "item_id",
    "product_id": "item_id",
    "ts": "timestamp",
    "time": "timestamp",
    "event": "event_type",
}


def _normalise_names(table: pa.Table) -> pa.Table:
    names = [c.strip().lower() for c in table.column_names]
    return table.rename_columns([ALIASES.get(n, n) for n in names])


def interactions_to_events(table: pa.Table, source: str, default_event_type: str = "view") -> pa.Table:
    """Loose interactions → loose events (all strings); the gate types and checks them afterwards."""
    if default_event_type not in EVENT_TYPES:
        raise BadInput(f"--event-type must be one of {', '.join(EVENT_TYPES)} (got {default_event_type!r})")
    table = _normalise_names(table)
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise BadInput(
            f"{source}: missing column(s) {', '.join(missing)}; an interactions file needs "
            "user_id,item_id,timestamp and optionally rating or event_type"
        )
    n = table.num_rows

    def col(name: str) -> pa.ChunkedArray:
        return table[name].cast(pa.string())

    if "event_type" in table.column_names:
        event_type = col("event_type")
    elif "rating" in table.column_names:
        event_type = pc.if_else(pc.is_null(table["rating"]), default_event_type, "rating")
    else:
        event_type = pa.array([default_event_type] * n, pa.string())
    value = (
        col("rating")
        if "rating" in table.column_names
        else (col("value") if "value" in table.column_names else pa.nulls(n, pa.string()))
    )
    parts = [
        pc.fill_null(c, "")
        for c in (
            col("user_id"),
            col("item_id"),
            col("timestamp"),
            pa.chunked_array([event_type]) if isinstance(event_type, pa.Array) else event_type,
            value,
        )
    ]
    identity = pc.binary_join_element_wise(*parts, "\x1f")
    from ingestion.lake import hash_strings

    hashes = hash_strings(identity)
    ids = pa.array(np.char.add("imp-", np.char.mod("%016x", hashes.astype(np.uint64))), pa.string())
    out = {
        "event_id": ids,
        "event_type": event_type,
        "user_id": col("user_id"),
        "item_id": col("item_id"),
        "ts": col("timestamp"),
        "value": value,
    }
    for optional in ("session_id", "quantity", "device", "country"):
        if optional in table.column_names:
            out[optional] = col(optional)
    return pa.table(out)


def normalise_catalog(table: pa.Table, source: str) -> pa.Table:
    """A shop's catalog with at least item_id; missing descriptive columns get neutral defaults."""
    table = _normalise_names(table)
    if "item_id" not in table.column_names:
        raise BadInput(f"{source}: a catalog needs an item_id column")
    n = table.num_rows
    item_id = table["item_id"].cast(pa.string())
    defaults = {
        "title": item_id,
        "category": pa.array(["Uncategorized"] * n, pa.string()),
        "brand": pa.nulls(n, pa.string()),
        "price": pa.nulls(n, pa.float64()),
        "in_stock": pa.array([True] * n),
        "created_at": pa.nulls(n, pa.timestamp("us", tz="UTC")),
        "description": pa.nulls(n, pa.string()),
    }
    columns = {"item_id": item_id}
    for name in CATALOG_COLUMNS[1:]:
        columns[name] = table[name] if name in table.column_names else defaults[name]
    return pa.table(columns)


def check_import_path(path: Path) -> None:
    if not path.is_file():
        raise BadInput(f"{path}: no such file")
    if path.suffix.lower() not in (".csv", ".parquet"):
        raise BadInput(f"{path}: interactions must be .csv or .parquet")
