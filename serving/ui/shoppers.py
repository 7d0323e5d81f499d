"""What the storefront shows about a shopper and a product, besides the API's own answers.

A shopper's recent activity comes from the online store through the same context reader /recommend
uses, so what the page lists is exactly what the policy sees (and it changes as soon as the stream has
pushed a new event). A product page has the catalog's details, the lake's counts and the items bought
together with it; similar items come from ``POST /similar`` itself.
"""

from __future__ import annotations

import random
from typing import Any, Final

from serving.catalog import CatalogSnapshot
from serving.ui.lake_stats import LakeStats

RECENT_SHOWN: Final = 20
_random = random.Random()


def random_shopper(stats: LakeStats) -> str | None:
    return _random.choice(stats.shoppers) if stats.shoppers else None


#: The activity panel reads the online store beside the request path: it may wait longer than one
#: /recommend does, and it must not trip the request path's breaker (the page polls it after an action).
ACTIVITY_READ_TIMEOUT_S: Final = 1.0


def shopper_view(runtime: Any, user_id: str) -> dict[str, Any]:
    from models.context import from_online

    online = from_online(runtime.settings, [user_id], timeout_s=ACTIVITY_READ_TIMEOUT_S)
    context = online.contexts.get(user_id)
    catalog: CatalogSnapshot = runtime.catalog.snapshot
    titles = {d["item_id"]: d["title"] for d in catalog.details(r.item_id for r in context.recent)}
    counters = context.counters
    return {
        "user_id": user_id,
        "known": context.has_history,
        "last_event_at": context.last_event_at.isoformat() if context.last_event_at else None,
        "recent": [
            {
                "item_id": r.item_id,
                "title": titles.get(r.item_id, r.item_id),
                "event_type": r.event_type,
                "ts": r.ts.isoformat(),
            }
            for r in context.recent[:RECENT_SHOWN]
        ],
        "counters": {
            "events": counters.events,
            "views": counters.views,
            "carts": counters.carts,
            "purchases": counters.purchases,
        },
        "degraded": bool(online.degraded),
        "reason": online.reason,
    }


def item_view(runtime: Any, stats: LakeStats, item_id: str) -> dict[str, Any] | None:
    """Details, counts and bought-together items of ``item_id``; None for an item the catalog lacks."""
    catalog: CatalogSnapshot = runtime.catalog.snapshot
    found = catalog.details([item_id])
    if not found:
        return None
    counts = {"views": 0, "carts": 0, "purchases": 0, "shoppers": 0}
    if item_id in stats.items.index:
        row = stats.items.loc[item_id]
        counts = {k: int(row[k]) for k in counts}
    partners = stats.together.get(item_id, [])
    details = {d["item_id"]: d for d in catalog.details(i for i, _ in partners)}
    together = [{**details[i], "baskets": n} for i, n in partners if i in details]
    return {**found[0], "counts": counts, "bought_together": together}
