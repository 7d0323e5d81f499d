"""Thin I/O around the jobs: read the lake into Spark, write and read the feature tables.

Snapshot tables are Hive-partitioned by ``snapshot_date`` (the column lives in the directory names,
not in the files); :func:`read_table` puts it back with the contract type, so what a reader gets is
exactly the schema in ``feature_repo/tables.py``.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
from pyspark.sql import DataFrame, SparkSession

from aisle.core.schemas import CATALOG_SCHEMA
from feature_repo.compute.frames import spark_schema
from feature_repo.tables import SCHEMAS

PARTITION = "snapshot_date"


def events_dir(lake: Path) -> Path:
    return lake / "events"


def catalog_path(lake: Path) -> Path:
    return lake / "catalog" / "catalog.parquet"


def read_events(spark: SparkSession, lake: Path) -> DataFrame:
    """All lake events, with the ``event_date`` partition column (a date) for pruning."""
    root = events_dir(lake)
    return spark.read.option("basePath", str(root)).parquet(str(root))


def read_catalog(spark: SparkSession, lake: Path) -> DataFrame:
    """The lake's catalog, or an empty one: items outside the catalog get null attributes, not an error."""
    path = catalog_path(lake)
    if not path.exists():
        return spark.createDataFrame([], spark_schema(CATALOG_SCHEMA))
    return spark.read.parquet(str(path))


def write_snapshots(df: DataFrame, path: Path, keys: list[str], *, only_new_partitions: bool) -> None:
    """One file per snapshot date, rows sorted by key (stable output, compact files).

    ``only_new_partitions`` replaces just the dates present in ``df`` (dynamic partition overwrite);
    otherwise the whole table is replaced, so dates that no longer exist disappear too.
    """
    mode = "dynamic" if only_new_partitions else "static"
    (
        df.repartition(PARTITION)
        .sortWithinPartitions(PARTITION, *keys)
        .write.mode("overwrite")
        .option("partitionOverwriteMode", mode)
        .partitionBy(PARTITION)
        .parquet(str(path))
    )


def write_single(df: DataFrame, path: Path, keys: list[str]) -> None:
    """A small whole-table output (one file), replaced on every build."""
    df.repartition(1).sortWithinPartitions(*keys).write.mode("overwrite").parquet(str(path))


def _dataset(path: Path, name: str) -> ds.Dataset:
    schema = SCHEMAS[name]
    if PARTITION in schema.names:
        partitioning = ds.partitioning(pa.schema([schema.field(PARTITION)]), flavor="hive")
        return ds.dataset(path, format="parquet", schema=schema, partitioning=partitioning)
    return ds.dataset(path, format="parquet", schema=schema)


def read_table(features_root: Path, name: str, where: ds.Expression | None = None) -> pa.Table:
    """A feature table as written, with the contract schema (``snapshot_date`` restored from the path);
    ``where`` (a dataset filter, e.g. on ``snapshot_date``) prunes partitions before reading."""
    path = features_root / name
    if not path.exists():
        return SCHEMAS[name].empty_table()
    return _dataset(path, name).to_table(filter=where)


def count_rows(features_root: Path, name: str, since: date | None = None) -> int:
    """Rows in a table (from the Parquet footers), optionally only snapshot dates >= ``since``."""
    path = features_root / name
    if not path.exists():
        return 0
    dataset = _dataset(path, name)
    if since is None or PARTITION not in SCHEMAS[name].names:
        return dataset.count_rows()
    return dataset.count_rows(filter=ds.field(PARTITION) >= pa.scalar(since, pa.date32()))
