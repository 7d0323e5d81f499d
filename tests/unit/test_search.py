"""Search by meaning: the catalog's words, the queries with known answers, the index, the keyword
baseline, precision and the shopper re-ranking. The sentence model is the real one (a 23 MB ONNX file
shipped in a wheel), run on a handful of texts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from aisle.core.settings import Settings
from ingestion.synthetic.catalog_tree import leaves
from ingestion.synthetic.catalog_words import WORDS
from ingestion.synthetic.describe import describe_item
from ingestion.synthetic.queries import KINDS, search_queries
from ingestion.synthetic.shop import ShopConfig, generate_shop
from models.search.keyword import KeywordIndex
from models.search.quality import precision_at_k
from serving.search import MATCH, MATCH_AND_TASTE, PERSONAL_WEIGHT, rerank

PATHS = [f"{top}>{sub}>{leaf}" for top, sub, leaf, _ in leaves()]


def test_every_leaf_of_the_tree_has_words_and_queries() -> None:
    assert {p.rsplit(">", 1)[-1] for p in PATHS} == set(WORDS)
    queries = search_queries(PATHS + PATHS[:3])  # repeats count once
    assert {q.category for q in queries} == set(PATHS)
    for kind in KINDS:
        per_leaf = pd.Series([q.category for q in queries if q.kind == kind]).value_counts()
        assert per_leaf.min() >= 2, kind
    assert search_queries(["Nowhere>Unknown>Leaf"]) == []


def test_generated_items_are_described_by_their_leaf_and_brand() -> None:
    shop = generate_shop(ShopConfig(users=50, items=300, days=5, seed=4))
    catalog = shop.catalog.to_pandas()
    assert catalog["title"].notna().all() and catalog["description"].notna().all()
    for row in catalog.itertuples():
        words = WORDS[row.category.rsplit(">", 1)[-1]]
        assert row.title.startswith(f"{row.brand} ") and words.noun in row.title
        assert words.noun.lower() in row.description and row.brand in row.description
    assert catalog["description"].nunique() > len(catalog) * 0.5  # not one sentence per leaf
    title, text = describe_item("Electronics>Audio>Earbuds", "Kalo", 3, np.array([0.0, 0.0, 0.0, 0.0]))
    assert title == "Kalo Wireless Earbuds 03"
    assert text.startswith("Wireless, sport earbuds with a secure fit for running and workouts")


def test_precision_counts_right_leaves_over_what_the_leaf_can_fill() -> None:
    categories = np.array(["A>x", "A>x", "B>y", "B>y", "B>y"])
    rows = np.array([[0, 2, 1], [2, 3, -1], [4, 0, 1]])
    p = precision_at_k(rows, categories, ["A>x", "B>y", "B>y"], k=3)
    # A>x has 2 items: both found among 3 -> 2/2; B>y: 2 of 3 found; third query: 1 of 3
    assert p.tolist() == pytest.approx([1.0, 2 / 3, 1 / 3])


def test_keyword_baseline_stems_and_says_when_nothing_matches() -> None:
    index = KeywordIndex(["Wireless sport earbuds for running", "Cast iron frying pan", "Electric kettle"])
    _, rows = index.search(["earbud", "something to boil water"], 2)
    assert rows[0, 0] == 0  # "earbud" finds "earbuds"
    assert (rows[1] == -1).all()  # no shared word: no result, not a random one


def test_rerank_lets_taste_reorder_near_ties_only() -> None:
    ids = np.array(["a", "b", "c", "d"])
    similarity = np.array([0.80, 0.78, 0.60, 0.59])
    plain = rerank(ids, similarity, None, 4)
    assert [h.item_id for h in plain] == ["a", "b", "c", "d"] and {h.reason for h in plain} == {MATCH}
    personal = np.array([0.0, 1.0, 0.2, 0.9])  # the shopper prefers b and d
    hits = rerank(ids, similarity, personal, 4)
    assert [h.item_id for h in hits] == ["b", "a", "d", "c"]  # within 0.05 they swap; c/d never pass a/b
    assert hits[0].reason == MATCH_AND_TASTE and hits[1].reason == MATCH
    assert hits[0].score == pytest.approx(0.78 + PERSONAL_WEIGHT)
    unknown = rerank(ids, similarity, np.array([np.nan, np.nan, np.nan, 1.0]), 2)
    assert [h.item_id for h in unknown] == ["a", "b"]  # one scored item: nothing to compare


def test_search_request_refuses_blank_queries() -> None:
    from serving.schemas import SearchRequest

    with pytest.raises(ValidationError, match="query"):
        SearchRequest.model_validate({"query": "   "})
    with pytest.raises(ValidationError):
        SearchRequest.model_validate({"query": "x", "k": 0})
    assert SearchRequest.model_validate({"query": "kettle", "user_id": "u1"}).k == 10


CATALOG = pd.DataFrame(
    {
        "item_id": ["k1", "k2", "p1", "e1", "b1"],
        "title": [
            "Kalo Electric Kettle 01",
            "Vero Glass Kettle 02",
            "Kalo Cast-iron Frying Pan 03",
            "Zen Wireless Earbuds 04",
            "Ora Epic Fantasy Novel 05",
        ],
        "description": [
            "Electric kettle that boils water in minutes.",
            "Glass kettle with automatic shut-off.",
            "Cast-iron frying pan that heats evenly on every hob.",
            "Wireless earbuds with a secure fit for running and workouts.",
            "Epic fantasy novel about a quest across enchanted kingdoms.",
        ],
        "category": [
            "Home>Appliances>Kettles",
            "Home>Appliances>Kettles",
            "Home>Cookware>Frying Pans",
            "Electronics>Audio>Earbuds",
            "Books>Fiction>Fantasy",
        ],
    }
)


def test_index_finds_by_meaning_and_is_rebuilt_only_when_the_words_change(
    embedded_settings: Settings,
) -> None:
    from models.search.index import SearchIndex, current_index, ensure_index
    from serving.catalog import CatalogSnapshot
    from serving.search import CatalogSearch, SearchNotReady

    index, built = ensure_index(embedded_settings, CATALOG)
    assert built and len(index) == 5
    again, built_again = ensure_index(embedded_settings, CATALOG)
    assert not built_again and again.key == index.key
    assert np.allclose(again.vectors, index.vectors, atol=1e-6)
    saved = list(Path(embedded_settings.paths.search).iterdir())
    assert [p.name for p in saved] == [index.key]
    assert SearchIndex.load(saved[0]).item_ids.tolist() == CATALOG["item_id"].tolist()
    changed = CATALOG.assign(title=CATALOG["title"].str.replace("Kettle", "Water Boiler"))
    assert current_index(embedded_settings, changed) is None

    engine = CatalogSearch(embedded_settings)
    with pytest.raises(SearchNotReady, match="no catalog"):
        engine.candidates("kettle", 3)
    engine.update(CatalogSnapshot(CATALOG.set_index("item_id"), 1.0), background=False)
    ids, similarity = engine.candidates("something to boil water for tea", 5)
    assert set(ids[:2]) == {"k1", "k2"}
    assert list(similarity) == sorted(similarity, reverse=True)
    ids, _ = engine.candidates("tiny audio buds for the gym", 1)
    assert ids.tolist() == ["e1"]
    ids, _ = engine.candidates("book with dragons and wizards", 1)
    assert ids.tolist() == ["b1"]
