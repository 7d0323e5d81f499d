"""Bring your own history: map an interactions export (user_id, item_id, timestamp[, rating | event_type])
into the event schema, so it goes through the same validation gate as everything else.

Column names are matched case-insensitively, with the usual spellings of public logs (``userId``,
``movieId``, ``visitorid``, ``itemid``, ``event``...). Event ids are derived from the row's content, so
importing the same file twice adds nothing. :class:`ImportMapping` records which column became which
field, so ``aisle data import --dry-run`` can show it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    "visitorid": "user_id",
    "customer_id": "user_id",
    "item": "item_id",
    "itemid": "item_id",
    "product_id": "item_id",
    "productid": "item_id",
    "movieid": "item_id",
    "ts": "timestamp",
    "time": "timestamp",
    "event": "event_type",
}
#: Event names of public logs → the schema's (RetailRocket: addtocart, transaction).
EVENT_ALIASES = {
    "addtocart": "add_to_cart",
    "add-to-cart": "add_to_cart",
    "cart": "add_to_cart",
    "transaction": "purchase",
    "buy": "purchase",
    "order": "purchase",
    "removefromcart": "remove_from_cart",
}
OPTIONAL = ("session_id", "quantity", "device", "country")


@dataclass(frozen=True)
class ImportMapping:
    """Where each event field comes from: a source column (as spelled in the file) or a rule."""

    fields: dict[str, str] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {"fields": self.fields, "ignored_columns": list(self.ignored)}


def _normalise_names(table: pa.Table) -> tuple[pa.Table, dict[str, str]]:
    """Rename columns to the importer's names; returns the table and new name → original name."""
    original: dict[str, str] = {}
    names = []
    for name in table.column_names:
        new = ALIASES.get(name.strip().lower(), name.strip().lower())
        original.setdefault(new, name)
        names.append(new)
    return table.rename_columns(names), original


def _event_types(column: pa.ChunkedArray) -> pa.ChunkedArray:
    lowered = pc.utf8_lower(pc.utf8_trim_whitespace(column.cast(pa.string())))
    out = lowered
    for alias, name in EVENT_ALIASES.items():
        out = pc.if_else(pc.equal(lowered, alias), name, out)
    return out


def interactions_to_events(
    table: pa.Table, source: str, default_event_type: str = "view"
) -> tuple[pa.Table, ImportMapping]:
    """Loose interactions → loose events (all strings) and the mapping used; the gate types and checks
    them afterwards. Rows with a rating become ``rating`` events with the stars in ``value``."""
    if default_event_type not in EVENT_TYPES:
        raise BadInput(f"--event-type must be one of {', '.join(EVENT_TYPES)} (got {default_event_type!r})")
    table, original = _normalise_names(table)
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise BadInput(
            f"{source}: missing column(s) {', '.join(missing)} (found {', '.join(original.values())}); an "
            "interactions file needs user_id,item_id,timestamp and optionally rating or event_type"
        )
    n = table.num_rows

    def col(name: str) -> pa.ChunkedArray:
        return table[name].cast(pa.string())

    fields = {"user_id": original["user_id"], "item_id": original["item_id"], "ts": original["timestamp"]}
    if "event_type" in table.column_names:
        event_type = _event_types(table["event_type"])
        fields["event_type"] = f"{original['event_type']} (names of public logs mapped, e.g. addtocart)"
    elif "rating" in table.column_names:
        event_type = pc.if_else(pc.is_null(table["rating"]), default_event_type, "rating")
        fields["event_type"] = f"'rating' where {original['rating']} is given, else '{default_event_type}'"
    else:
        event_type = pa.chunked_array([pa.array([default_event_type] * n, pa.string())])
        fields["event_type"] = f"'{default_event_type}' for every row (--event-type)"
    if "rating" in table.column_names:
        value = col("rating")
        fields["value"] = f"{original['rating']} (the stars)"
    elif "value" in table.column_names:
        value = col("value")
        fields["value"] = original["value"]
    else:
        value = pa.chunked_array([pa.nulls(n, pa.string())])
    identity = pc.binary_join_element_wise(
        *(pc.fill_null(c, "") for c in (col("user_id"), col("item_id"), col("timestamp"), event_type, value)),
        "\x1f",
    )
    from ingestion.lake import hash_strings

    hashes = hash_strings(identity).astype(np.uint64)
    fields["event_id"] = "derived from the row's content (re-importing adds nothing)"
    out = {
        "event_id": pa.array(
            np.char.add("imp-", np.char.mod("%016x", hashes.astype(np.uint64))), pa.string()
        ),
        "event_type": event_type,
        "user_id": col("user_id"),
        "item_id": col("item_id"),
        "ts": col("timestamp"),
        "value": value,
    }
    for optional in OPTIONAL:
        if optional in table.column_names:
            out[optional] = col(optional)
            fields[optional] = original[optional]
    used = {"user_id", "item_id", "timestamp", "event_type", "rating", "value", *OPTIONAL}
    ignored = tuple(original[c] for c in table.column_names if c not in used)
    return pa.table(out), ImportMapping(fields=fields, ignored=ignored)


def normalise_catalog(table: pa.Table, source: str) -> pa.Table:
    """A shop's catalog with at least item_id; missing descriptive columns get neutral defaults."""
    table, _ = _normalise_names(table)
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
