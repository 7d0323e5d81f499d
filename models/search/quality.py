"""How good a search is on queries with known answers: precision of the top results.

A result is right when it sits in the query's leaf category. A leaf with fewer than ``k`` items cannot
fill ``k`` places, so precision@k divides by ``min(k, items in the leaf)``: a perfect search scores 1
on every query, and small leaves are not held against it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def precision_at_k(rows: np.ndarray, item_category: np.ndarray, wanted: Sequence[str], k: int) -> np.ndarray:
    """Per query: right answers among its first ``k`` result rows (rows of ``item_category``; -1 = no
    result) over ``min(k, size of the wanted leaf)``."""
    categories = np.asarray(item_category, dtype=object)
    sizes = {c: int(n) for c, n in zip(*np.unique(categories.astype(str), return_counts=True), strict=True)}
    out = np.zeros(len(wanted), dtype=np.float64)
    for q, target in enumerate(wanted):
        top = rows[q, :k]
        top = top[top >= 0]
        hits = int(np.sum(categories[top] == target)) if len(top) else 0
        out[q] = hits / max(1, min(k, sizes.get(target, 0)))
    return out
