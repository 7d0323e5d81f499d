"""item_cooccurrence: items bought together and viewed together, for candidate generation.

A basket is a session, or for events without one, a user's calendar day (UTC). Each basket counts once
per pair however often the items recur in it, and only its first ``MAX_BASKET_ITEMS`` distinct items
(by first touch) take part: pairing is quadratic in basket size, and a crawler's thousand-item
"session" says nothing about what goes together. The score is cosine similarity of basket
memberships, count(a, b) / sqrt(count(a) * count(b)) with count(a) the baskets holding a, so a
bestseller is not everyone's neighbour.
"""

from __future__ import annotations

from typing import Final

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from feature_repo.compute.frames import conform, require_enriched
from feature_repo.tables import COOCCURRENCE_TOP_K, ITEM_COOCCURRENCE_SCHEMA

MAX_BASKET_ITEMS: Final = 50


def baskets(enriched: DataFrame, event_type: str, max_items: int = MAX_BASKET_ITEMS) -> DataFrame:
    """(basket, items): the distinct items of each basket for one event type, first touched first, each
    as (item_id, baskets) where ``baskets`` is how many baskets hold the item (whatever their size).

    The item counts ride along in the baskets so that scoring needs no second pass over them: Spark
    would recompute a basket aggregation that two branches of one plan read.
    """
    basket = F.coalesce(
        F.concat(F.lit("s:"), F.col("session_id")),
        F.concat(F.lit("u:"), F.col("user_id"), F.lit(":"), F.col("day").cast("string")),
    )
    firsts = (
        enriched.where(F.col("event_type") == event_type)
        .groupBy(basket.alias("basket"), F.col("item_id"))
        .agg(F.min("ts").alias("first_ts"))
        .withColumn("baskets", F.count(F.lit(1)).over(Window.partitionBy("item_id")))
    )
    # sort_array and field extraction, not array_sort / transform: lambdas defeat plan comparison
    ordered = F.sort_array(F.collect_list(F.struct("first_ts", "item_id", "baskets")))
    return (
        firsts.groupBy("basket")
        .agg(F.slice(ordered, 1, max_items).alias("touched"))
        .select(
            "basket",
            F.arrays_zip(
                F.col("touched.item_id").alias("item_id"), F.col("touched.baskets").alias("baskets")
            ).alias("items"),
        )
    )


def pair_scores(baskets_: DataFrame, top_k: int = COOCCURRENCE_TOP_K) -> DataFrame:
    """(item_id, others, scores): each item's ``top_k`` partners, best first (ties: more baskets, then id).

    Pairs are counted once as (a < b) and mirrored after scoring, which halves the big aggregation.
    """
    pairs = (
        baskets_.where(F.size("items") > 1)
        .select(F.explode("items").alias("x"), "items")
        .select("x", F.explode("items").alias("y"))
        .where(F.col("x.item_id") < F.col("y.item_id"))
        .groupBy(F.col("x.item_id").alias("a"), F.col("y.item_id").alias("b"))
        .agg(
            F.count(F.lit(1)).alias("n_ab"),
            F.max("x.baskets").alias("n_a"),  # the same on every row of the pair
            F.max("y.baskets").alias("n_b"),
        )
    )
    score = (F.col("n_ab") / F.sqrt(F.col("n_a") * F.col("n_b"))).alias("score")
    scored = pairs.select("a", "b", "n_ab", score)
    mirrored = F.array(
        F.struct("a", "b", "n_ab", "score"),
        F.struct(F.col("b").alias("a"), F.col("a").alias("b"), "n_ab", "score"),
    )
    both = scored.select(F.explode(mirrored).alias("p")).select("p.*")  # one pass, not a self-union
    best = Window.partitionBy("a").orderBy(F.col("score").desc(), F.col("n_ab").desc(), F.col("b"))
    ranked = both.withColumn("rank", F.row_number().over(best)).where(F.col("rank") <= top_k)
    top = F.sort_array(F.collect_list(F.struct("rank", "b", "score")))
    return (
        ranked.groupBy(F.col("a").alias("item_id"))
        .agg(top.alias("top"))
        .select("item_id", F.col("top.b").alias("others"), F.col("top.score").alias("scores"))
    )


def _or_empty(col: str, element: T.DataType) -> Column:
    return F.coalesce(F.col(col), F.array().cast(T.ArrayType(element)))


def newest_micros(enriched: DataFrame) -> int | None:
    """The newest event time in µs since the epoch (None: no events)."""
    row = enriched.agg(F.unix_micros(F.max("ts")).alias("us")).first()
    return None if row is None or row["us"] is None else int(row["us"])


def item_cooccurrence(enriched: DataFrame, built_at_us: int | None = None) -> DataFrame:
    """One row per item with any partner; lists are empty (not null) when it has partners of one kind only.

    ``built_at_us`` (µs since the epoch) defaults to the newest event + 1 µs, so the table is "known"
    right after the data it summarises and a point-in-time join never sees it earlier. ``enriched``
    comes from :func:`~feature_repo.compute.frames.enrich`.
    """
    require_enriched(enriched)
    if built_at_us is None:
        newest = newest_micros(enriched)
        built_at_us = 0 if newest is None else newest + 1
    bought = pair_scores(baskets(enriched, "purchase")).select(
        "item_id", F.col("others").alias("bought_together"), F.col("scores").alias("bought_together_scores")
    )
    viewed = pair_scores(baskets(enriched, "view")).select(
        "item_id", F.col("others").alias("viewed_together"), F.col("scores").alias("viewed_together_scores")
    )
    out = bought.join(viewed, "item_id", "full").select(
        F.coalesce("item_id", F.lit("")).alias("item_id"),  # a full join's key is never null either side
        F.timestamp_micros(F.lit(built_at_us)).alias("event_timestamp"),
        _or_empty("bought_together", T.StringType()).alias("bought_together"),
        _or_empty("bought_together_scores", T.DoubleType()).alias("bought_together_scores"),
        _or_empty("viewed_together", T.StringType()).alias("viewed_together"),
        _or_empty("viewed_together_scores", T.DoubleType()).alias("viewed_together_scores"),
    )
    return conform(out, ITEM_COOCCURRENCE_SCHEMA)
