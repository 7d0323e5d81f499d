"""The one predict path: shoppers' contexts → retrieve → rank → business rules → diversify → lists.

``/recommend`` runs it for one shopper with the context read online; ``aisle recommend-batch`` runs it for
many with contexts from the lake. Same policy, same rules, same code, so the same shopper in the same
state gets the same list either way (``tests/integration/test_serving.py`` checks it).

Per request:
1. **retrieve + rank** (the policy): two-tower ANN ∪ co-occurrence of the recent items ∪ trending, minus
   what the shopper already touched or bought and the request's ``exclude_items``; Wide & Deep orders
   them. The policy is asked for more than ``k`` so the rules have room.
2. **rules**: out-of-stock items and the request's category / price filters are dropped, boosts from the
   rules file applied; then **diversity** (per-category cap or MMR) picks ``k``; **pins** take their
   positions; if filters left fewer than ``k``, the shop-wide list (trending / popularity) fills in, with
   the same rules. The answer has exactly ``k`` items whenever the catalog holds that many allowed items.
3. **reasons** for every item.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from models.context import PolicyQueries
from models.hybrid import COLD_START
from serving import reasons
from serving.policies import POPULARITY, ServedPolicy
from serving.rules import NO_WISHES, Rules, Wishes, allowed, boost, diversify

#: The stages whose time is measured (``features`` is the online context read, done by the caller).
STAGES: Final = ("features", "retrieval", "ranking", "rules")
#: Candidates asked of the policy beyond ``k``: room for the rules to drop and reorder.
DEPTH_FACTOR: Final = 3
DEPTH_MIN_EXTRA: Final = 30
_FAVOURITE: Final = "user_features__fav_category_30d"


@dataclass(frozen=True)
class Ask:
    """What one caller wants: ``k`` items for ``user_id`` within ``wishes``."""

    user_id: str
    k: int
    wishes: Wishes = NO_WISHES


@dataclass(frozen=True)
class Pick:
    item_id: str
    score: float
    reason: str


@dataclass
class Answer:
    items: list[Pick]
    source: str  # hybrid | cold_start | popularity
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def item_ids(self) -> list[str]:
        return [p.item_id for p in self.items]


def depth(k: int, n_pins: int) -> int:
    """How many ranked candidates to ask the policy for, to answer ``k`` after the rules."""
    return max(k * DEPTH_FACTOR, k + DEPTH_MIN_EXTRA) + n_pins


def recommend(
    served: ServedPolicy,
    rules: Rules,
    queries: PolicyQueries,
    asks: Sequence[Ask],
    *,
    include_seen: bool = False,
    timings: dict[str, float] | None = None,
) -> list[Answer]:
    """One answer per ask; ``queries`` holds the asks' shoppers in the same order.

    ``include_seen`` lets items the shopper viewed come back (never purchased ones). ``timings`` gains
    the seconds spent in retrieval, ranking and rules, summed over the asks.
    """
    if len(queries) != len(asks):
        raise ValueError(f"{len(asks)} asks for {len(queries)} query rows")
    clock = timings if timings is not None else {}
    excluded = [
        (set(queries.purchased[r]) if include_seen else set(queries.excluded[r]))
        | set(ask.wishes.exclude_items)
        for r, ask in enumerate(asks)
    ]
    n_pins = len(rules.pins)
    want = max((depth(a.k, n_pins) for a in asks), default=0)
    policy_timings: dict[str, float] = {}
    t0 = time.perf_counter()
    rows = queries.columns if getattr(served.policy, "takes_columns", False) else queries.frame
    ranked = served.policy.recommend(rows, want, excluded, **_timed(served, policy_timings))
    spent = time.perf_counter() - t0
    ranking = policy_timings.get("ranking", 0.0)  # policies that cannot say: all of it is retrieval
    clock["retrieval"] = clock.get("retrieval", 0.0) + max(spent - ranking, 0.0)
    clock["ranking"] = clock.get("ranking", 0.0) + ranking
    t1 = time.perf_counter()
    answers = [
        _apply_rules(served, rules, queries, r, ask, rec.items, rec.scores, rec.source, excluded[r])
        for r, (ask, rec) in enumerate(zip(asks, ranked, strict=True))
    ]
    clock["rules"] = clock.get("rules", 0.0) + time.perf_counter() - t1
    return answers


def _timed(served: ServedPolicy, sink: dict[str, float]) -> dict[str, Any]:
    """``timings=`` for policies that can report their own retrieval/ranking split."""
    return {"timings": sink} if getattr(served.policy, "reports_timings", False) else {}


def _apply_rules(
    served: ServedPolicy,
    rules: Rules,
    queries: PolicyQueries,
    r: int,
    ask: Ask,
    ranked_ids: list[str],
    ranked_scores: list[float],
    source: str,
    excluded: set[str],
) -> Answer:
    items = served.items
    k = ask.k
    rows = items.positions(ranked_ids)
    scores = boost(np.asarray(ranked_scores, dtype=np.float64), rows, items, rules.boosts)
    keep = np.flatnonzero(allowed(items, rows, ask.wishes))
    # stable: equal boosted scores keep the policy's order (which broke its own ties by item id)
    order = keep[np.argsort(-scores[keep], kind="stable")]
    pinned = [(pos, item) for pos, item in _pins(served, rules, ask.wishes, excluded) if pos <= k]
    pinned_ids = {item for _, item in pinned}
    order = np.asarray([c for c in order.tolist() if ranked_ids[c] not in pinned_ids], dtype=np.int64)
    room = k - len(pinned)
    chosen = diversify(order, rows, scores, room, items, rules.diversity, served.embeddings)
    picks_ids = [ranked_ids[c] for c in chosen]
    picks_scores = [float(scores[c]) for c in chosen]
    personal = source not in (COLD_START, POPULARITY)
    picks_reasons = _reasons(served, queries, r, picks_ids, personal)
    picks = [Pick(i, s, why) for i, s, why in zip(picks_ids, picks_scores, picks_reasons, strict=True)]
    if len(picks) < room:
        picks += _fill(served, ask.wishes, excluded | set(picks_ids) | pinned_ids, room - len(picks))
    for position, pin in sorted(pinned):
        reason = next(p.reason for p in rules.pins if p.item_id == pin)
        top = picks[0].score if picks else 0.0
        picks.insert(min(position - 1, len(picks)), Pick(pin, top, reason))
    return Answer(picks[:k], source)


def _pins(served: ServedPolicy, rules: Rules, wishes: Wishes, excluded: set[str]) -> list[tuple[int, str]]:
    """(position, item) of the pins that may be shown to this shopper under this request's filters."""
    if not rules.pins:
        return []
    ids = [p.item_id for p in rules.pins]
    ok = allowed(served.items, served.items.positions(ids), wishes)
    return [
        (p.position, p.item_id)
        for p, fine in zip(rules.pins, ok, strict=True)
        if fine and p.item_id not in excluded
    ]


def _fill(served: ServedPolicy, wishes: Wishes, taken: set[str], n: int) -> list[Pick]:
    """Up to ``n`` items from the shop-wide list that pass the same rules: after strict filters the
    personal candidates may run out, the answer should not."""
    items = served.items
    order = served.shop_order
    ok = allowed(items, order, wishes)
    out: list[Pick] = []
    for row in order[ok].tolist():
        item = str(items.ids[row])
        if item in taken:
            continue
        out.append(
            Pick(item, float(served.shop_scores[row]), reasons.list_reason(items, row, served.shop_kind))
        )
        if len(out) == n:
            break
    return out


def _reasons(
    served: ServedPolicy, queries: PolicyQueries, r: int, ids: list[str], personal: bool
) -> list[str]:
    items = served.items
    rows = items.positions(ids)
    if not personal:
        return [reasons.list_reason(items, row, served.shop_kind) for row in rows.tolist()]
    recent = list(queries.value("recent_items", r))[: served.recent_limit]
    favourite = queries.value(_FAVOURITE, r)
    return reasons.explain(
        items,
        rows,
        recent_rows=items.positions(recent),
        purchased=queries.purchased[r],
        cooccurrence=served.cooccurrence,
        trending_rows=served.trending_rows,
        favourite=favourite if isinstance(favourite, str) else None,
    )
