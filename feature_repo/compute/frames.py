"""Column expressions and schema plumbing shared by the feature jobs.

Days are counted as whole days since 1970-01-01 UTC (``day``), computed from microseconds, so the
jobs do not depend on the session time zone. A daily snapshot for day ``D`` is stamped
``(D + 1) * DAY_US``: the end of its day, when everything in it is known.
"""

from __future__ import annotations

from typing import Final

import pyarrow as pa
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from aisle.core.schemas import DEFAULT_RATINGS, EVENT_WEIGHTS, RATING, RatingScale

DAY_US: Final = 86_400_000_000


def day_of(ts: str) -> Column:
    """UTC day number of the (non-null) timestamp column ``ts``, by exact integer division; declared
    non-null so that keys derived from it are too."""
    return F.coalesce(F.expr(f"unix_micros(`{ts}`) div {DAY_US}"), F.lit(0)).cast("int")


def day_end(day: str | Column) -> Column:
    """Timestamp of the end of a day (next midnight UTC): the ``event_timestamp`` of its snapshot."""
    col = F.col(day) if isinstance(day, str) else day
    return F.timestamp_micros((col.cast("long") + 1) * F.lit(DAY_US))


def day_date(day: str | Column) -> Column:
    return F.date_from_unix_date(F.col(day) if isinstance(day, str) else day)


def age_days(later: Column, earlier: Column) -> Column:
    """(later - earlier) in days, as a float."""
    return (F.unix_micros(later) - F.unix_micros(earlier)) / F.lit(float(DAY_US))


def event_weight(ratings: RatingScale = DEFAULT_RATINGS) -> Column:
    """``aisle.core.schemas.interaction_weights`` as a CASE expression over ``event_type`` and ``value``:
    EVENT_WEIGHTS, a rating by its stars, unknown types 0."""
    col = F.col("event_type")
    stars = F.col("value").cast("double")
    strong = F.coalesce(stars >= F.lit(ratings.strong_min), F.lit(False))
    expr = F.when(col == RATING, F.when(strong, F.lit(ratings.strong_weight)).otherwise(ratings.weak_weight))
    for name, weight in EVENT_WEIGHTS.items():
        expr = expr.when(col == name, F.lit(weight))
    return expr.otherwise(F.lit(0.0))


def top_category(category: str = "category") -> Column:
    """First part of the category path ``A>B>C``; null when missing or blank."""
    return F.nullif(F.trim(F.substring_index(F.col(category), ">", 1)), F.lit(""))


def ratio(num: Column, den: Column, *, when_zero: float | None = None) -> Column:
    """num / den, ``when_zero`` (null by default) where den is 0: ANSI mode raises on division by 0."""
    out = F.when(den > 0, num.cast("double") / den.cast("double"))
    return out.otherwise(F.lit(when_zero)) if when_zero is not None else out


def catalog_attributes(catalog: DataFrame) -> DataFrame:
    """item_id, price, category, top_category, brand, in_stock, created_at: small, so broadcast."""
    return F.broadcast(
        catalog.where(F.col("item_id").isNotNull()).select(
            "item_id",
            F.col("price").cast("double").alias("price"),
            "category",
            top_category().alias("top_category"),
            F.nullif(F.trim("brand"), F.lit("")).alias("brand"),
            F.col("in_stock").cast("boolean").alias("in_stock"),
            "created_at",
        )
    )


def usable(events: DataFrame) -> DataFrame:
    """Events with the fields every job keys on, declared non-null.

    The lake's gate already refuses rows without them; the filter makes that true for any input, and
    the ``coalesce`` (which never fires after it) tells Spark, whose analysed schema does not learn
    from filters. The output contract marks these keys non-null, and :func:`conform` checks it.
    """
    keys = ("user_id", "item_id", "event_type", "ts")
    kept = events.where(F.col("user_id").isNotNull() & F.col("item_id").isNotNull())
    kept = kept.where(F.col("event_type").isNotNull() & F.col("ts").isNotNull())
    return kept.select(
        F.coalesce("user_id", F.lit("")).alias("user_id"),
        F.coalesce("item_id", F.lit("")).alias("item_id"),
        F.coalesce("event_type", F.lit("")).alias("event_type"),
        F.coalesce("ts", F.timestamp_micros(F.lit(0))).alias("ts"),
        *[c for c in events.columns if c not in keys],
    )


ENRICHED: Final = ("user_id", "item_id", "event_type", "ts", "session_id", "value", "day", "weight")


def enrich(events: DataFrame, catalog: DataFrame, ratings: RatingScale = DEFAULT_RATINGS) -> DataFrame:
    """Usable events with ``day``, ``weight`` and the item's ``top_category`` and ``brand`` (null: not in
    the catalog): the input of every job, computed (and cached by the build) once."""
    attrs = catalog_attributes(catalog).select("item_id", "top_category", "brand")
    return (
        usable(events)
        .select("user_id", "item_id", "event_type", "ts", "session_id", "value")
        .withColumn("day", day_of("ts"))
        .withColumn("weight", event_weight(ratings))
        .join(attrs, "item_id", "left")
    )


def require_enriched(events: DataFrame) -> None:
    missing = [c for c in (*ENRICHED, "top_category", "brand") if c not in events.columns]
    if missing:
        raise ValueError(f"events lack {missing}: pass them through enrich(events, catalog) first")


# --- schemas ------------------------------------------------------------------------------------------

_SCALARS: Final[dict[pa.DataType, T.DataType]] = {
    pa.string(): T.StringType(),
    pa.int64(): T.LongType(),
    pa.int32(): T.IntegerType(),
    pa.float64(): T.DoubleType(),
    pa.bool_(): T.BooleanType(),
    pa.date32(): T.DateType(),
}


def spark_type(arrow: pa.DataType) -> T.DataType:
    if pa.types.is_timestamp(arrow):
        return T.TimestampType()  # an instant; written as TIMESTAMP_MICROS, isAdjustedToUTC
    if pa.types.is_list(arrow):
        return T.ArrayType(spark_type(arrow.value_type), containsNull=arrow.value_field.nullable)
    if arrow in _SCALARS:
        return _SCALARS[arrow]
    raise TypeError(f"no Spark type for {arrow}")


def spark_schema(schema: pa.Schema) -> T.StructType:
    return T.StructType([T.StructField(f.name, spark_type(f.type), f.nullable) for f in schema])


def conform(df: DataFrame, schema: pa.Schema) -> DataFrame:
    """Columns of ``schema``, in its order, with its types and its nullability.

    Spark decides nullability from the plan; a column the contract calls nullable but Spark proves
    non-null would be written ``required``. A union with an empty frame of the contract schema widens
    exactly those (Spark keeps that through optimisation). A contract non-null column that Spark thinks
    nullable is a bug in the job, so it raises instead of being papered over.
    """
    target = spark_schema(schema)
    missing = [f.name for f in target.fields if f.name not in df.columns]
    if missing:
        raise ValueError(f"missing columns {missing}")
    out = df.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in target.fields])
    loose = [f.name for f in target.fields if not f.nullable and out.schema[f.name].nullable]
    if loose:
        raise ValueError(f"columns {loose} must be provably non-null for the contract")
    empty = df.sparkSession.createDataFrame([], target)
    return empty.unionByName(out)
