"""``/similar``: items like a given one, from the served policy's two signals about items.

Shoppers who looked at the item also looked at (co-occurrence within sessions) come first, then the
nearest items in the two-tower embedding space; both pass the same stock rule as recommendations, and
the per-category cap or MMR of the rules file keeps the list varied.
"""

from __future__ import annotations

import numpy as np

from serving.pipeline import Pick
from serving.policies import ServedPolicy
from serving.reasons import similar_reason
from serving.rules import NO_WISHES, Rules, allowed, diversify

#: Neighbours considered from each signal before the rules pick ``k``.
POOL = 200


def similar_items(served: ServedPolicy, rules: Rules, item_id: str, k: int) -> list[Pick]:
    """Up to ``k`` in-stock items other than ``item_id``, best first, each with its reason.

    Score: the co-occurrence probability P(other | item) for items seen together, placed above every
    embedding neighbour (1 + P), then the cosine similarity of the two items' embeddings (-1..1).
    """
    items = served.items
    row = items.index[item_id]
    n = len(items)
    score = np.full(n, -np.inf)
    together = np.zeros(n, dtype=bool)
    if served.embeddings is not None and served.embeddings[row].any():
        score = (served.embeddings @ served.embeddings[row]).astype(np.float64)
        score[~served.embeddings.any(axis=1)] = -np.inf
    if served.cooccurrence is not None:
        co = served.cooccurrence.getrow(row)
        together[co.indices] = co.data > 0
        score[co.indices] = np.where(co.data > 0, 1.0 + co.data, score[co.indices])
    score[row] = -np.inf
    candidates = np.flatnonzero(np.isfinite(score))
    if len(candidates) > POOL:
        candidates = candidates[np.argpartition(-score[candidates], POOL - 1)[:POOL]]
    ok = allowed(items, candidates, NO_WISHES)
    candidates = candidates[ok]
    order = np.lexsort((items.ids[candidates], -score[candidates]))  # best first, ties by id
    picked = diversify(order, candidates, score[candidates], k, items, rules.diversity, served.embeddings)
    return [
        Pick(
            str(items.ids[candidates[c]]),
            float(score[candidates[c]]),
            similar_reason(items, item_id, bool(together[candidates[c]])),
        )
        for c in picked
    ]
