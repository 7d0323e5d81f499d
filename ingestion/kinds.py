"""What a file holds (events, a catalog or users) is told by its columns, or by ``--kind``: never by its
name. ``catalogue_views.csv`` full of events is events; ``users_clicks.csv`` with event columns too.

Only the header is read here (a Parquet schema, a CSV header, the first JSON Lines object), so a
directory is sorted into kinds before anything is ingested: catalogs first, so events are checked
against the items they name.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Final

import pyarrow.parquet as pq

from aisle.core.errors import BadInput
from ingestion.readers import MAX_LINE_BYTES, csv_header, csv_records, file_format

KINDS: Final = ("events", "catalog", "users")
#: Columns only an event has; any one of them makes a file an event file.
EVENT_MARKS: Final = frozenset({"event_id", "event_type", "ts"})
#: Columns that describe an item; with item_id (and no user_id) they make a catalog.
CATALOG_MARKS: Final = frozenset({"title", "category", "brand", "price", "in_stock", "description"})
#: Columns that describe a shopper; with user_id (and no item_id) they make a users file.
USER_MARKS: Final = frozenset({"created_at", "country", "device"})


def columns_of(path: Path, max_line_bytes: int = MAX_LINE_BYTES) -> list[str]:
    """The file's column names, read from its header only. BadInput when it has none."""
    fmt = file_format(path)
    if fmt == "parquet":
        try:
            return list(pq.read_schema(path).names)
        except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
            raise BadInput(f"{path}: not a readable Parquet file ({type(exc).__name__})") from None
    with path.open("rb") as handle:
        head = handle.read(max_line_bytes + 1)
    if fmt == "csv":
        records = [r for r in csv_records(head) if r.strip()]
        if not records:
            return []
        return csv_header(records[0], str(path), max_line_bytes)
    for line in io.BytesIO(head):
        if line.strip():
            try:
                obj = json.loads(line)
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
                return []  # the reader will quarantine the lines with their reasons
            return list(obj) if isinstance(obj, dict) else []
    return []


def kind_of(columns: list[str]) -> str | None:
    """events, catalog, users, or None when the columns do not say."""
    names = {c.strip().lower() for c in columns}
    if names & EVENT_MARKS:
        return "events"
    if "item_id" in names and "user_id" not in names and names & CATALOG_MARKS:
        return "catalog"
    if "user_id" in names and "item_id" not in names and (names & USER_MARKS or names == {"user_id"}):
        return "users"
    return None


def unknown_kind(path: Path, columns: list[str]) -> str:
    """Why a file's kind could not be told, and what to do."""
    shown = ", ".join(columns[:8]) + (", …" if len(columns) > 8 else "") if columns else "none"
    hint = ""
    if len(columns) == 1 and any(sep in columns[0] for sep in (";", "\t", "|")):
        hint = " The header looks delimited by something other than commas: CSV files need commas."
    return (
        f"{path}: cannot tell from its columns ({shown}) whether it holds events (event_id, event_type, "
        f"user_id, item_id, ts), a catalog (item_id, title, category...) or users (user_id, country...); "
        f"pass --kind events|catalog|users.{hint}"
    )
