"""The describe step: titles and descriptions a shopper (and search by meaning) can read.

Runs last, over the finished catalog table, so it describes every item whatever the earlier steps
added, from the item's own leaf (its ``category`` path) and brand. It draws from its own random stream,
so the shoppers, sessions and events of a seed are the same with or without it: only the catalog's
``title`` and ``description`` columns are its output.

A title reads "Kalo Noise-Cancelling Headphones 12"; a description "Noise-cancelling, foldable
headphones with soft cushions for long listening, with 30 hours of playback. Part of the Kalo Audio
range." The words per leaf live in ``catalog_words.py``.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pyarrow as pa

from ingestion.synthetic.catalog_words import WORDS, LeafWords

#: The describe step's own random stream (``default_rng([seed, DESCRIBE_STREAM])``).
DESCRIBE_STREAM: Final = 7_300_001


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def leaf_words(category_path: str) -> LeafWords:
    """The words of the leaf at the end of a category path; KeyError for a leaf the tree lacks."""
    return WORDS[category_path.rsplit(">", 1)[-1]]


def describe_item(path: str, brand: str, number: int, draws: np.ndarray) -> tuple[str, str]:
    """(title, description) of one item; ``draws``: four uniform numbers in [0, 1)."""
    words = leaf_words(path)
    parts = path.split(">")
    sub = parts[1] if len(parts) > 2 else parts[0]
    attrs, points = words.attributes, words.selling_points
    first = int(draws[0] * len(attrs))
    second = (first + 1 + int(draws[1] * (len(attrs) - 1))) % len(attrs)
    p1 = int(draws[2] * len(points))
    p2 = (p1 + 1 + int(draws[3] * (len(points) - 1))) % len(points)
    title = f"{brand} {_capital(attrs[first])} {words.noun} {number:02d}"
    description = (
        f"{_capital(attrs[first])}, {attrs[second]} {words.noun.lower()} {points[p1]}, {points[p2]}. "
        f"Part of the {brand} {sub} range."
    )
    return title, description


def describe_catalog(catalog: pa.Table, rng: np.random.Generator) -> pa.Table:
    """The catalog with ``title`` and ``description`` written from each item's leaf and brand."""
    n = catalog.num_rows
    draws = rng.random((n, 4))
    paths = catalog["category"].to_pylist()
    brands = catalog["brand"].to_pylist()
    titles: list[str] = []
    descriptions: list[str] = []
    for i in range(n):
        title, description = describe_item(str(paths[i]), str(brands[i]), i % 97 + 1, draws[i])
        titles.append(title)
        descriptions.append(description)
    out = catalog.set_column(catalog.schema.get_field_index("title"), "title", pa.array(titles))
    return out.set_column(out.schema.get_field_index("description"), "description", pa.array(descriptions))
