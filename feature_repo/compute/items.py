"""item_features: daily per-item popularity snapshots joined with catalog attributes (ITEM_FEATURES_SCHEMA).

The trending score decays each event by its age at the snapshot time. Per day we keep the events'
decayed weight as of the end of that day; a snapshot D days later multiplies it by 0.5^(D/half-life),
so the 30-day score is a sum over at most 30 daily values instead of a pass over raw events.
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from feature_repo.compute.frames import (
    DAY_US,
    age_days,
    catalog_attributes,
    conform,
    day_date,
    day_end,
    ratio,
    require_enriched,
)
from feature_repo.compute.users import LONGEST, day_number, rolling
from feature_repo.tables import ITEM_FEATURES_SCHEMA, TRENDING_HALF_LIFE_DAYS, WINDOWS


def item_daily(enriched: DataFrame) -> DataFrame:
    """One row per (item, day with events): counts and the day's decayed weight at the end of the day."""
    age = (F.unix_micros(day_end("day")) - F.unix_micros("ts")) / F.lit(float(DAY_US))
    decayed = F.col("weight") * F.pow(F.lit(0.5), age / F.lit(TRENDING_HALF_LIFE_DAYS))
    return (
        enriched.select("item_id", "event_type", "day", decayed.alias("decayed"))
        .groupBy("item_id", "day")
        .agg(
            F.count(F.when(F.col("event_type") == "view", 1)).alias("views"),
            F.count(F.when(F.col("event_type") == "add_to_cart", 1)).alias("carts"),
            F.count(F.when(F.col("event_type") == "purchase", 1)).alias("purchases"),
            F.sum("decayed").alias("decayed"),
        )
    )


def trending(daily: DataFrame) -> DataFrame:
    """Adds ``trending_score``: the decayed weights of the last 30 days, aged to each snapshot."""
    window = Window.partitionBy("item_id").orderBy("day").rangeBetween(-(LONGEST - 1), 0)
    recent = F.collect_list(F.struct("day", "decayed")).over(window)
    score = F.aggregate(
        recent,
        F.lit(0.0),
        lambda acc, x: (
            acc + x["decayed"] * F.pow(F.lit(0.5), (F.col("day") - x["day"]) / F.lit(TRENDING_HALF_LIFE_DAYS))
        ),
    )
    return daily.withColumn("trending_score", score)


def item_features(enriched: DataFrame, catalog: DataFrame, since: date | None = None) -> DataFrame:
    """Snapshots for every (item, day >= since) with events that day.

    ``enriched`` comes from :func:`~feature_repo.compute.frames.enrich`, from 30 days before ``since``;
    the catalog gives the item attributes (null for items it does not list).
    """
    require_enriched(enriched)
    counts = {"views": list(WINDOWS), "carts": list(WINDOWS), "purchases": list(WINDOWS)}
    rolled = trending(rolling(item_daily(enriched), "item_id", counts))
    if since is not None:
        rolled = rolled.where(F.col("day") >= day_number(since))
    ts = day_end("day")
    out = rolled.join(catalog_attributes(catalog), "item_id", "left").select(
        "*",
        ts.alias("event_timestamp"),
        day_date("day").alias("snapshot_date"),
        ratio(F.col("purchases_30d"), F.col("views_30d"), when_zero=0.0).alias("conversion_rate_30d"),
        age_days(ts, F.col("created_at")).alias("age_days"),
    )
    return conform(out, ITEM_FEATURES_SCHEMA)
