"""The predict path's business rules on a small hand-made catalog and a stand-in policy.

The stand-in only replaces the trained policy (its ranked candidate lists); the rules, pins, diversity,
fill-in and reasons are the real code. The same rules on a trained policy, through HTTP, are checked in
tests/integration/test_serving.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from aisle.core.errors import BadInput
from models.context import PolicyQueries
from models.hybrid import HYBRID, Recommendation
from serving.items import BRAND, CATEGORY, IN_STOCK, PRICE, TOP_CATEGORY, ItemTable
from serving.pipeline import Ask, recommend
from serving.policies import ServedPolicy
from serving.rules import Boost, Diversity, Rules, Wishes, allowed, boost, diversify, load_rules
from serving.smoke import violations

IDS = [f"i{n}" for n in range(12)]
CATS = ["A>x", "A>x", "A>x", "A>x", "A>y", "A>y", "B>z", "B>z", "B>z", "C", "C", "C"]


def _items() -> ItemTable:
    features = pd.DataFrame(
        {
            CATEGORY: CATS,
            TOP_CATEGORY: [c.split(">")[0] for c in CATS],
            BRAND: ["acme" if n % 2 else "other" for n in range(12)],
            PRICE: [float(10 * (n + 1)) for n in range(12)],
            IN_STOCK: [n != 1 for n in range(12)],  # i1 is out of stock
        },
        index=pd.Index(IDS, name="item_id"),
    )
    return ItemTable.build(IDS, features, {"i0": "Red Kettle"})


class RankedOrder:
    """Stands in for the trained policy: every shopper gets the catalog in index order, minus seen."""

    def recommend(
        self, queries: pd.DataFrame, k: int, seen: Sequence[set[str]] | None = None
    ) -> list[Recommendation]:
        out = []
        for r in range(len(queries)):
            kept = [i for i in IDS if i not in (seen[r] if seen else set())][:k]
            out.append(Recommendation(kept, [1.0 - n / 100 for n in range(len(kept))], HYBRID))
        return out


def _served(items: ItemTable) -> ServedPolicy:
    cooc = sp.csr_matrix(np.eye(len(IDS), k=1) * 0.5)  # item n co-occurs with item n+1
    return ServedPolicy(
        alias="champion",
        version="7",
        policy=RankedOrder(),
        items=items,
        shop_order=np.arange(len(IDS))[::-1].copy(),
        shop_scores=np.arange(len(IDS), dtype=float),
        shop_kind="trending",
        trending_rows=frozenset({11}),
        cooccurrence=cooc,
        embeddings=None,
        recent_limit=20,
        degraded=False,
    )


def _queries(users: list[str], recent: list[list[str]], purchased: list[set[str]]) -> PolicyQueries:
    frame = pd.DataFrame({"user_id": users, "recent_items": recent})
    return PolicyQueries(frame, [set(r) | p for r, p in zip(recent, purchased, strict=True)], purchased)


def test_rules_hold_on_every_answer() -> None:
    served = _served(_items())
    rules = Rules(diversity=Diversity(method="cap", max_per_category=2, mmr_lambda=0.7))
    queries = _queries(["u1", "u2"], [["i0"], []], [{"i3"}, set()])
    asks = [Ask("u1", 5), Ask("u2", 4, Wishes(categories=("B",), exclude_items=frozenset({"i7"})))]
    answers = recommend(served, rules, queries, asks)
    assert violations(served, queries, asks, answers) == []
    first, second = answers
    assert len(first.items) == 5 and "i1" not in first.item_ids and "i3" not in first.item_ids
    assert "i0" not in first.item_ids  # recently viewed: never shown again
    # the cap: at most two of one leaf category while others remain
    assert max(pd.Series([CATS[IDS.index(i)] for i in first.item_ids]).value_counts()) <= 2
    assert all(p.reason for p in first.items)
    # only B items and i7 excluded: the two that remain, fewer than k because no more exist
    assert second.item_ids == ["i6", "i8"]


def test_filters_that_leave_few_items_give_what_exists() -> None:
    served = _served(_items())
    queries = _queries(["u"], [[]], [set()])
    answer = recommend(served, Rules(), queries, [Ask("u", 10, Wishes(price_min=100, price_max=120))])[0]
    assert answer.item_ids == ["i9", "i10", "i11"]  # prices 100, 110, 120; nothing else qualifies


def test_pins_take_their_position_only_when_allowed() -> None:
    from serving.rules import Pin

    served = _served(_items())
    rules = Rules(
        pins=(Pin(item_id="i9", position=1, reason="staff pick"), Pin(item_id="i1", position=2)),
        diversity=Diversity(method="none", max_per_category=3, mmr_lambda=0.7),
    )
    queries = _queries(["u"], [[]], [set()])
    answer = recommend(served, rules, queries, [Ask("u", 4)])[0]
    assert answer.item_ids[0] == "i9" and answer.items[0].reason == "staff pick"
    assert "i1" not in answer.item_ids  # pinned but out of stock: the hard rule wins
    assert len(answer.item_ids) == 4 and len(set(answer.item_ids)) == 4


def test_reasons_name_the_recent_item_and_purchases() -> None:
    served = _served(_items())
    rules = Rules(diversity=Diversity(method="none", max_per_category=3, mmr_lambda=0.7))
    viewed = _queries(["u"], [["i4"]], [set()])
    bought = _queries(["u"], [["i4"]], [{"i4"}])
    by_view = recommend(served, rules, viewed, [Ask("u", 12)])[0]
    by_purchase = recommend(served, rules, bought, [Ask("u", 12)])[0]
    assert dict((p.item_id, p.reason) for p in by_view.items)["i5"] == "because you viewed i4"
    assert dict((p.item_id, p.reason) for p in by_purchase.items)["i5"] == "bought together with i4"
    assert dict((p.item_id, p.reason) for p in by_view.items)["i11"] == "trending in C"


def test_violations_reports_broken_rules() -> None:
    from serving.pipeline import Answer, Pick

    served = _served(_items())
    queries = _queries(["u"], [[]], [{"i2"}])
    bad = Answer([Pick("i1", 1, "x"), Pick("i2", 1, "x"), Pick("i2", 1, "")], HYBRID)
    problems = " ".join(violations(served, queries, [Ask("u", 3)], [bad]))
    for words in ("duplicate", "out of stock", "already purchased", "without a reason"):
        assert words in problems


def test_allowed_boost_and_diversify() -> None:
    items = _items()
    rows = np.array([0, 1, 6, -1])
    assert allowed(items, rows, Wishes()).tolist() == [True, False, True, True]
    assert allowed(items, rows, Wishes(categories=("a",))).tolist() == [True, False, False, False]
    assert allowed(items, rows, Wishes(price_max=10)).tolist() == [True, False, False, False]
    scores = boost(np.array([2.0, -2.0]), np.array([1, 3]), items, [Boost(brand="ACME", factor=2)])
    assert scores.tolist() == [4.0, -1.0]  # a boost moves a negative score up too
    order = np.arange(4)
    capped = diversify(
        order,
        np.array([0, 2, 3, 4]),
        np.ones(4),
        3,
        items,
        Diversity(method="cap", max_per_category=1, mmr_lambda=0.5),
        None,
    )
    assert capped.tolist() == [0, 3, 1]  # one A>x first, then A>y; the soft cap fills with the skipped


def test_mmr_prefers_variety_when_items_are_alike() -> None:
    items = _items()
    vectors = np.zeros((12, 2), dtype=np.float32)
    vectors[[0, 2, 3]] = [1, 0]  # three identical items
    vectors[6] = [0, 1]
    picked = diversify(
        np.arange(4),
        np.array([0, 2, 3, 6]),
        np.array([1.0, 0.99, 0.98, 0.5]),
        2,
        items,
        Diversity(method="mmr", max_per_category=3, mmr_lambda=0.5),
        vectors,
    )
    assert picked.tolist() == [0, 3]


def test_rules_file_errors_are_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    assert load_rules(path) == Rules()
    path.write_text("boosts:\n  - {category: A, brand: b, factor: 2}\n")
    with pytest.raises(BadInput, match="exactly one of category, brand or item_id"):
        load_rules(path)
    path.write_text("pins: [{item_id: a, position: 1}, {item_id: b, position: 1}]\n")
    with pytest.raises(BadInput, match="same position"):
        load_rules(path)
    path.write_text("diversity: {method: shuffle}\n")
    with pytest.raises(BadInput, match=r"diversity\.method"):
        load_rules(path)
    path.write_text("boosts: [\n")
    with pytest.raises(BadInput, match="not readable YAML"):
        load_rules(path)
    path.write_text("boosts: [{item_id: i3, factor: 2}]\ndiversity: {method: mmr, mmr_lambda: 0.5}\n")
    assert load_rules(path).diversity.method == "mmr"
