"""Search queries whose right answers are known from the catalog tree: a leaf's items answer its queries.

Two kinds per leaf of the generated catalog, from ``catalog_words.py``:

* ``keyword``: an attribute and the leaf's name, the words a shop uses ("wireless earbuds");
* ``intent``: what a shopper types who does not know those words ("tiny audio buds for the gym",
  "something to boil water"), written as paraphrases.

The search benchmark and tests ask both and count how many of the top results sit in the right leaf.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from ingestion.synthetic.catalog_words import WORDS

KINDS: Final = ("keyword", "intent")
#: Keyword queries per leaf (from its first attributes).
KEYWORD_QUERIES: Final = 2


@dataclass(frozen=True)
class SearchQuery:
    text: str
    category: str  # the full path of the leaf whose items are the right answers
    kind: str  # keyword | intent


def search_queries(categories: Iterable[str]) -> list[SearchQuery]:
    """The queries of every leaf among ``categories`` (category paths; repeats and unknown leaves are
    skipped), in a stable order."""
    out: list[SearchQuery] = []
    for path in sorted(set(categories)):
        leaf = path.rsplit(">", 1)[-1]
        words = WORDS.get(leaf)
        if words is None:
            continue
        for attribute in words.attributes[:KEYWORD_QUERIES]:
            out.append(SearchQuery(f"{attribute} {leaf.lower()}", path, "keyword"))
        out.extend(SearchQuery(intent, path, "intent") for intent in words.intents)
    return out
