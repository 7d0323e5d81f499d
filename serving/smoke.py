"""Checks every answer must pass, and the smoke test a new champion goes through before it is served.

:func:`violations` states the hard rules on real output (exactly k, no duplicates, nothing purchased,
nothing out of stock, the filters); the tests, the ``deploy_service`` DAG's smoke test and the
benchmark's sanity check all use it, so "the rules hold" means one thing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from models.context import PolicyQueries
from serving.pipeline import Answer, Ask, recommend
from serving.policies import ServedPolicy, load_served
from serving.rules import allowed

if TYPE_CHECKING:
    from serving.runtime import Runtime

SMOKE_ALIAS = "smoke"
UNKNOWN_SHOPPER = "__smoke_test_unknown_shopper__"


def violations(
    served: ServedPolicy, queries: PolicyQueries, asks: Sequence[Ask], answers: Sequence[Answer]
) -> list[str]:
    """Every broken hard rule, one sentence each ([] when all hold)."""
    problems: list[str] = []
    items = served.items
    for r, (ask, answer) in enumerate(zip(asks, answers, strict=True)):
        ids = answer.item_ids
        who = f"shopper {ask.user_id!r}"
        if len(ids) != len(set(ids)):
            problems.append(f"{who}: duplicate items")
        rows = items.positions(ids)
        if (rows < 0).any():
            problems.append(f"{who}: items the catalog does not hold")
        fine = allowed(items, rows, ask.wishes)
        if not fine.all():
            bad = [i for i, ok in zip(ids, fine, strict=True) if not ok]
            problems.append(f"{who}: out of stock or outside the filters: {bad[:5]}")
        bought = set(ids) & set(queries.purchased[r])
        if bought:
            problems.append(f"{who}: already purchased {sorted(bought)[:5]}")
        excluded = set(ids) & set(ask.wishes.exclude_items)
        if excluded:
            problems.append(f"{who}: excluded items {sorted(excluded)[:5]}")
        showable = set(items.ids[allowed(items, np.arange(len(items)), ask.wishes)].tolist())
        available = len(showable - set(queries.excluded[r]) - set(ask.wishes.exclude_items))
        if len(ids) < min(ask.k, available):
            problems.append(f"{who}: {len(ids)} items, not {ask.k}")
        if any(not p.reason for p in answer.items):
            problems.append(f"{who}: an item without a reason")
    return problems


def smoke_test(runtime: Runtime, version: str, users: Sequence[str], k: int) -> dict[str, Any]:
    """Load ``version`` beside the served policy (never serving it), answer ``users`` and one unknown
    shopper through the full pipeline with their online contexts, and report any broken rule."""
    started = time.perf_counter()
    served = load_served(runtime.settings, SMOKE_ALIAS, version, runtime._fresh_features)
    load_s = time.perf_counter() - started
    shoppers = [*dict.fromkeys(users), UNKNOWN_SHOPPER]
    online = runtime.reader.read(shoppers)
    queries = online.contexts.queries(shoppers)
    asks = [Ask(u, k) for u in shoppers]
    t0 = time.perf_counter()
    answers = recommend(served, runtime.rules, queries, asks)
    answer_s = time.perf_counter() - t0
    problems = violations(served, queries, asks, answers)
    if served.fallback:
        problems.append(f"version {version} did not load as a trained policy")
    return {
        "version": served.version,
        "ok": not problems,
        "problems": problems,
        "shoppers": len(shoppers),
        "online_context": "degraded" if online.degraded else "ok",
        "load_seconds": round(load_s, 3),
        "answer_ms_per_shopper": round(answer_s * 1000 / len(shoppers), 3),
        "lists": {a.user_id: ans.item_ids for a, ans in zip(asks, answers, strict=True)},
    }
