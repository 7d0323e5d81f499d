"""Where Feast reads each offline table: Parquet under ``settings.paths.features`` (see feature_repo.tables).

Paths are globs (``<table>/**/*.parquet``) because the Spark jobs write directories, daily snapshots
partitioned as ``snapshot_date=YYYY-MM-DD/part-*.parquet`` next to ``_SUCCESS`` markers: DuckDB expands
the glob, reads the hive partition column, and skips the markers. The same glob also matches a flat
directory of files (the co-occurrence table), so every table is addressed the same way.
"""

from __future__ import annotations

from pathlib import Path

from feast import FileSource, PushSource
from feast.data_format import ParquetFormat

from aisle.core.settings import Settings
from feature_repo import tables

TIMESTAMP_FIELD = "event_timestamp"
USER_RECENT_PUSH = "user_recent_push"


def table_glob(settings: Settings, name: str) -> str:
    """The absolute glob DuckDB reads for table ``name``; absolute so no working directory matters."""
    return str(tables.table_dir(settings.paths.features, name) / "**" / "*.parquet")


def has_data(settings: Settings, name: str) -> bool:
    """Whether table ``name`` has at least one Parquet file yet (DuckDB fails on an empty glob)."""
    root: Path = tables.table_dir(settings.paths.features, name)
    return root.is_dir() and next(root.rglob("*.parquet"), None) is not None


def _file_source(settings: Settings, name: str, description: str) -> FileSource:
    return FileSource(
        name=name,
        path=table_glob(settings, name),
        file_format=ParquetFormat(),
        timestamp_field=TIMESTAMP_FIELD,
        description=description,
    )


def batch_sources(settings: Settings) -> dict[str, FileSource]:
    """One source per offline table, keyed by table name (which is also the source name)."""
    return {
        tables.USER_FEATURES: _file_source(
            settings, tables.USER_FEATURES, "Daily per-user activity snapshots, stamped at end of day."
        ),
        tables.ITEM_FEATURES: _file_source(
            settings, tables.ITEM_FEATURES, "Daily per-item popularity, price and catalog snapshots."
        ),
        tables.USER_CATEGORY: _file_source(
            settings, tables.USER_CATEGORY, "Daily user x top-category affinity snapshots."
        ),
        tables.ITEM_COOCCURRENCE: _file_source(
            settings, tables.ITEM_COOCCURRENCE, "Bought/viewed-together lists, one table per build."
        ),
        tables.USER_RECENT: _file_source(
            settings,
            tables.USER_RECENT,
            "Offline copy of the stream features (written only if some job keeps one; may be absent).",
        ),
    }


def user_recent_push(batch_source: FileSource) -> PushSource:
    """The stream consumer pushes session features here; they reach Redis at once (PushMode.ONLINE)."""
    return PushSource(
        name=USER_RECENT_PUSH,
        batch_source=batch_source,
        description="Recent items and session counters, pushed by the stream consumer within a second.",
    )
