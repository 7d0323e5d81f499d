"""What the event lake says about items and shoppers, for the storefront and the analyst pages.

One DuckDB pass over the lake's Parquet parts (never loaded into pandas whole): per item the views,
carts, purchases and distinct shoppers; the most recently active shoppers (the "random shopper"
button picks among them); and items bought together (purchased in the same session, or by the same
shopper on the same day when events carry no session). Cached and recomputed at most once a minute,
or when the lake gained parts.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Final

import pandas as pd

from aisle.core.settings import Settings

#: Shoppers offered by "random shopper": the most recently active ones (they have online context).
ACTIVE_SHOPPERS: Final = 5000
#: Bought-together partners kept per item.
TOGETHER: Final = 12
MAX_AGE_S: Final = 60.0


@dataclass(frozen=True)
class LakeStats:
    items: pd.DataFrame  # index item_id: views, carts, purchases, shoppers
    shoppers: list[str]  # most recently active first
    together: dict[str, list[tuple[str, int]]]  # item → [(item, baskets with both)], most first
    events: int = 0
    users: int = 0
    parts: int = 0
    computed_at: float = field(default_factory=time.time)
    seconds: float = 0.0


def _empty(parts: int = 0) -> LakeStats:
    frame = pd.DataFrame(
        columns=["views", "carts", "purchases", "shoppers"], index=pd.Index([], name="item_id")
    )
    return LakeStats(frame, [], {}, parts=parts)


def compute(settings: Settings) -> LakeStats:
    import duckdb

    from ingestion.lake import EventLake

    started = time.perf_counter()
    parts = [str(p) for p in EventLake(settings.paths.lake).parts()]
    if not parts:
        return _empty()
    con = duckdb.connect()
    try:
        con.execute("SET threads TO 1")  # a service worker: leave the cores to the requests
        con.read_parquet(parts, union_by_name=True).select(
            "event_type, user_id, item_id, ts, session_id"
        ).create_view("ev")
        items = con.execute(
            """SELECT item_id,
                      count(*) FILTER (WHERE event_type = 'view') AS views,
                      count(*) FILTER (WHERE event_type = 'add_to_cart') AS carts,
                      count(*) FILTER (WHERE event_type = 'purchase') AS purchases,
                      count(DISTINCT user_id) AS shoppers
               FROM ev GROUP BY item_id"""
        ).df()
        totals = con.execute("SELECT count(*), count(DISTINCT user_id) FROM ev").fetchone() or (0, 0)
        shoppers = [
            str(r[0])
            for r in con.execute(
                "SELECT user_id FROM ev GROUP BY user_id ORDER BY max(ts) DESC, user_id LIMIT $n",
                {"n": ACTIVE_SHOPPERS},
            ).fetchall()
        ]
        pairs = con.execute(
            """WITH baskets AS (
                   SELECT DISTINCT
                       coalesce(session_id, user_id || '@' || CAST(CAST(ts AS DATE) AS VARCHAR)) AS basket,
                          item_id
                   FROM ev WHERE event_type = 'purchase')
               SELECT a.item_id, b.item_id, count(*) AS n
               FROM baskets a JOIN baskets b ON a.basket = b.basket AND a.item_id <> b.item_id
               GROUP BY a.item_id, b.item_id"""
        ).fetchall()
    finally:
        con.close()
    together: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for a, b, n in sorted(pairs, key=lambda r: (r[0], -r[2], r[1])):
        if len(together[a]) < TOGETHER:
            together[str(a)].append((str(b), int(n)))
    items["item_id"] = items["item_id"].astype(str)
    return LakeStats(
        items=items.set_index("item_id"),
        shoppers=shoppers,
        together=dict(together),
        events=int(totals[0]),
        users=int(totals[1]),
        parts=len(parts),
        seconds=round(time.perf_counter() - started, 3),
    )


class LakeStatsCache:
    """The newest :class:`LakeStats`, recomputed when older than ``max_age_s`` and the lake changed."""

    def __init__(self, settings: Settings, max_age_s: float = MAX_AGE_S) -> None:
        self.settings = settings
        self.max_age_s = max_age_s
        self._stats: LakeStats | None = None
        self._lock = threading.Lock()

    def get(self) -> LakeStats:
        from ingestion.lake import EventLake

        stats = self._stats
        if stats is not None and time.time() - stats.computed_at < self.max_age_s:
            return stats
        with self._lock:
            stats = self._stats
            if stats is not None and time.time() - stats.computed_at < self.max_age_s:
                return stats
            if stats is None or len(EventLake(self.settings.paths.lake).parts()) != stats.parts:
                stats = compute(self.settings)
            else:  # same parts: same numbers, look again later
                stats = dataclasses.replace(stats, computed_at=time.time())
            self._stats = stats
            return stats
