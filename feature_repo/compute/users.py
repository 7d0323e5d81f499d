"""user_features: daily per-user activity snapshots (USER_FEATURES_SCHEMA).

Windows are whole days: the 7-day window of the snapshot stamped at the end of day D covers days
D-6..D, i.e. ``event_timestamp - 7 days <= ts < event_timestamp``. Per-day aggregates are rolled up
with range windows over the day number, so each event is read once whatever the number of windows.
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from feature_repo.compute.frames import DAY_US, conform, day_date, day_end, ratio, require_enriched
from feature_repo.tables import USER_FEATURES_SCHEMA, WINDOWS

LONGEST = max(WINDOWS)
ATTRIBUTES = ("top_category", "brand")


def day_number(day: date) -> int:
    return (day - date(1970, 1, 1)).days


def _is(event_type: str) -> Column:
    return F.col("event_type") == event_type


def user_daily(enriched: DataFrame) -> DataFrame:
    """One row per (user, active day): counts, purchase amounts, last purchase, total weight."""
    return enriched.groupBy("user_id", "day").agg(
        F.count(F.when(_is("view"), 1)).alias("views"),
        F.count(F.when(_is("add_to_cart"), 1)).alias("carts"),
        F.count(F.when(_is("purchase"), 1)).alias("purchases"),
        F.sum(F.when(_is("purchase"), F.col("value"))).alias("paid_sum"),
        F.count(F.when(_is("purchase"), F.col("value"))).alias("paid_n"),
        F.max(F.when(_is("purchase"), F.col("ts"))).alias("last_purchase_ts"),
        F.sum("weight").alias("weight"),
    )


def rolling(daily: DataFrame, key: str, columns: dict[str, list[int]]) -> DataFrame:
    """Add ``<col>_<w>d`` sums over the last ``w`` days (today included) for each column and window."""
    ordered = Window.partitionBy(key).orderBy("day")
    sums = [
        F.sum(col).over(ordered.rangeBetween(-(w - 1), 0)).alias(f"{col}_{w}d")
        for col, windows in columns.items()
        for w in windows
    ]
    return daily.select("*", *sums)


def user_windows(enriched: DataFrame) -> DataFrame:
    """user_daily plus the rolling counts and the running last purchase (all history read)."""
    daily = user_daily(enriched)
    counts = {"views": list(WINDOWS), "carts": list(WINDOWS), "purchases": list(WINDOWS)}
    extra = {"paid_sum": [LONGEST], "paid_n": [LONGEST], "weight": [LONGEST]}
    rolled = rolling(daily, "user_id", {**counts, **extra})
    upto = Window.partitionBy("user_id").orderBy("day").rowsBetween(Window.unboundedPreceding, 0)
    return rolled.withColumn("last_purchase_ts", F.max("last_purchase_ts").over(upto))


def attribute_windows(enriched: DataFrame, since: date | None = None, days: int = LONGEST) -> DataFrame:
    """(user_id, day, attribute, value, events, weight): for each snapshot (a user's active day >= since),
    the events and weight per top category (``attribute`` = "top_category") and per brand ("brand") in
    the ``days`` days up to it.

    A range join rather than a window: a category the user did not touch on day D still counts for D's
    snapshot if it was touched in the days before. Categories and brands go through one join.
    """
    parts = [
        enriched.where(F.col(attr).isNotNull()).select(
            "user_id",
            "day",
            F.lit(attr).alias("attribute"),
            F.coalesce(attr, F.lit("")).alias("value"),  # declares the filter's not-null to Spark
            "weight",
        )
        for attr in ATTRIBUTES
    ]
    daily = (
        parts[0]
        .unionByName(parts[1])
        .groupBy("user_id", "day", "attribute", "value")
        .agg(F.count(F.lit(1)).alias("n"), F.sum("weight").alias("w"))
    )
    snapshots = snapshot_days(enriched.select("user_id", "day").distinct(), since)
    s, d = snapshots.alias("s"), daily.alias("d")
    joined = s.join(
        d,
        (F.col("s.user_id") == F.col("d.user_id"))
        & (F.col("d.day") <= F.col("s.day"))
        & (F.col("d.day") > F.col("s.day") - days),
    )
    return joined.groupBy(
        F.col("s.user_id").alias("user_id"), F.col("s.day").alias("day"), "d.attribute", "d.value"
    ).agg(F.sum("d.n").alias("events"), F.sum("d.w").alias("weight"))


def favourites(windows: DataFrame) -> DataFrame:
    """fav_category_30d and fav_brand_30d: most events wins, ties go to the alphabetically first value."""

    def pick(attr: str) -> Column:
        rank = F.when(F.col("attribute") == attr, F.struct((-F.col("events")).alias("neg"), F.col("value")))
        return F.min_by("value", rank)  # min_by skips rows whose ordering is null (other attributes)

    return windows.groupBy("user_id", "day").agg(
        pick("top_category").alias("fav_category_30d"), pick("brand").alias("fav_brand_30d")
    )


def snapshot_days(days: DataFrame, since: date | None) -> DataFrame:
    days = days.select("user_id", "day")
    return days if since is None else days.where(F.col("day") >= day_number(since))


def user_features(
    enriched: DataFrame,
    since: date | None = None,
    prior_last_purchase: DataFrame | None = None,
    attributes: DataFrame | None = None,
) -> DataFrame:
    """Snapshots for every (user, day) with at least one event, days >= ``since``.

    ``enriched`` comes from :func:`~feature_repo.compute.frames.enrich` and must reach back at least
    30 days before ``since``. Purchases older than that come in ``prior_last_purchase`` (user_id,
    last_purchase_ts), so days since the last purchase still look at the whole history.
    ``attributes`` is :func:`attribute_windows` for the same input when the caller has it already.
    """
    require_enriched(enriched)
    windows = user_windows(enriched)
    if since is not None:
        windows = windows.where(F.col("day") >= day_number(since))
    if prior_last_purchase is not None:
        prior = prior_last_purchase.select("user_id", F.col("last_purchase_ts").alias("prior_ts"))
        windows = windows.join(prior, "user_id", "left").withColumn(
            "last_purchase_ts", F.coalesce("last_purchase_ts", "prior_ts")
        )
    favs = favourites(attributes if attributes is not None else attribute_windows(enriched, since))
    ts = day_end("day")
    out = windows.join(favs, ["user_id", "day"], "left").select(
        "*",
        ts.alias("event_timestamp"),
        day_date("day").alias("snapshot_date"),
        ((F.unix_micros(ts) - F.unix_micros("last_purchase_ts")) / F.lit(float(DAY_US))).alias(
            "days_since_last_purchase"
        ),
        ratio(F.col("paid_sum_30d"), F.col("paid_n_30d")).alias("avg_price_paid_30d"),
        ratio(F.col("purchases_30d"), F.col("views_30d"), when_zero=0.0).alias("purchase_rate_30d"),
    )
    return conform(out, USER_FEATURES_SCHEMA)


def last_purchases(events: DataFrame) -> DataFrame:
    """(user_id, last_purchase_ts) over ``events``: the history before an incremental build's window."""
    return (
        events.where((F.col("event_type") == "purchase") & F.col("user_id").isNotNull())
        .groupBy("user_id")
        .agg(F.max("ts").alias("last_purchase_ts"))
    )
