"""Why an item is on a list, in words a shopper can read.

The reason is the strongest signal that put the item there, checked in this order: the shop pinned it;
it co-occurs with something the shopper recently bought ("bought together with …") or looked at
("because you viewed …"); it is trending in its category; it matches the shopper's favourite category;
otherwise the learned taste model chose it. Cold-start and fill-in items say what list they came from.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final

import numpy as np
import scipy.sparse as sp

from models.policy_signals import row_entries
from serving.items import ItemTable

TRENDING: Final = "trending"
POPULAR: Final = "popular"


def _where(items: ItemTable, row: int) -> str:
    top = items.top_category[row] if row >= 0 and len(items) else ""
    return f" in {top}" if top else " right now"


def list_reason(items: ItemTable, row: int, kind: str) -> str:
    """For items that come from a shop-wide list (cold start, fill-in): "trending in Garden"."""
    return f"{kind}{_where(items, row)}"


def explain(
    items: ItemTable,
    rows: np.ndarray,
    *,
    recent_rows: np.ndarray,
    purchased: Collection[str],
    cooccurrence: sp.csr_matrix | None,
    trending_rows: Collection[int],
    favourite: str | None,
) -> list[str]:
    """One reason per item row of a personalised list (rows of ``items``, -1 for unknown ids)."""
    reasons: list[str | None] = [None] * len(rows)
    recent_rows = recent_rows[recent_rows >= 0]
    if cooccurrence is not None and len(recent_rows) and len(rows):
        block = np.zeros((len(recent_rows), len(rows)), dtype=np.float64)  # anchors x picks
        at = np.full(cooccurrence.shape[1], -1, dtype=np.int64)
        at[rows[rows >= 0]] = np.flatnonzero(rows >= 0)
        which, cols, data = row_entries(cooccurrence, recent_rows)
        hit = at[cols] >= 0
        np.add.at(block, (which[hit], at[cols[hit]]), data[hit])
        best = block.argmax(axis=0)  # ties: the newest anchor (recent items are newest first)
        strength = block[best, np.arange(len(rows))]
        for j in np.flatnonzero(strength > 0):
            anchor = str(items.ids[recent_rows[best[j]]])
            title = items.title(anchor)
            reasons[j] = (
                f"bought together with {title}" if anchor in purchased else f"because you viewed {title}"
            )
    fav = (favourite or "").strip().lower()
    for i, row_id in enumerate(rows.tolist()):
        row = int(row_id)
        if reasons[i] is not None:
            continue
        if row in trending_rows:
            reasons[i] = list_reason(items, row, TRENDING)
        elif fav and row >= 0 and items.top_category[row].lower() == fav:
            reasons[i] = f"matches your interest in {items.top_category[row]}"
        else:
            reasons[i] = f"picked for your taste{_where(items, row)}"
    return [r or "" for r in reasons]


def similar_reason(items: ItemTable, anchor: str, together: bool) -> str:
    """For /similar: co-occurrence means shoppers looked at both in one session."""
    title = items.title(anchor)
    return f"often viewed together with {title}" if together else f"similar to {title}"
