"""user_category_affinity: the share of a user's 30-day weighted attention per top-level category.

The denominator is every weighted event of the user in the window, including items missing from the
catalog, so the affinities of one snapshot sum to at most 1 and an unknown share stays unknown.
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from feature_repo.compute.frames import conform, day_date, day_end, require_enriched
from feature_repo.compute.users import LONGEST, attribute_windows, rolling
from feature_repo.tables import USER_CATEGORY_SCHEMA


def user_category_affinity(
    enriched: DataFrame, since: date | None = None, attributes: DataFrame | None = None
) -> DataFrame:
    """Rows for each (user, day >= since) with events that day and each category with weight > 0.

    ``enriched`` comes from :func:`~feature_repo.compute.frames.enrich`, from 30 days before ``since``;
    ``attributes`` is :func:`~feature_repo.compute.users.attribute_windows` of it, when already at hand.
    """
    require_enriched(enriched)
    daily = enriched.groupBy("user_id", "day").agg(F.sum("weight").alias("weight"))
    totals = rolling(daily, "user_id", {"weight": [LONGEST]}).select(
        "user_id", "day", F.col(f"weight_{LONGEST}d").alias("total")
    )
    windows = attributes if attributes is not None else attribute_windows(enriched, since)
    per_category = windows.where((F.col("attribute") == "top_category") & (F.col("weight") > 0))
    out = per_category.join(totals, ["user_id", "day"]).select(
        "user_id",
        F.col("value").alias("top_category"),
        day_end("day").alias("event_timestamp"),
        (F.col("weight") / F.col("total")).alias("affinity_30d"),
        day_date("day").alias("snapshot_date"),
    )
    return conform(out, USER_CATEGORY_SCHEMA)
