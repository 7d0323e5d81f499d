"""The offline copy of the ``user_recent`` view: one row per shopper, from the whole lake.

The stream consumer pushes the view online as events arrive, but history that came in as files never
passes through it. Writing the same rows from the lake (``feature_repo.user_recent.from_events``, the
vectorised twin of the stream's fold) lets materialization load every shopper's context into Redis, so
serving knows a returning shopper whose history was imported. Each row is stamped at the shopper's
newest event, so Feast's online store keeps whichever of a pushed and a materialized row is newer.

Pandas rather than Spark: it is one pass over the lake's five columns, and the definition must stay the
one the stream uses.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.parquet as pq

from feature_repo.tables import USER_RECENT, table_dir
from feature_repo.user_recent import from_events
from ingestion.lake import EventLake

FILE_NAME = "part-0.parquet"


def write_user_recent(lake: Path, features_root: Path) -> int:
    """Rewrite the table from the lake (atomically); returns the number of shoppers."""
    events = (
        EventLake(lake).read().select(["event_id", "event_type", "user_id", "item_id", "ts", "session_id"])
    )
    table = from_events(events)
    out = table_dir(features_root, USER_RECENT)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{FILE_NAME}.{os.getpid()}.tmp"
    pq.write_table(table, tmp, coerce_timestamps="us")
    tmp.replace(out / FILE_NAME)
    (out / "_SUCCESS").touch()
    return table.num_rows
