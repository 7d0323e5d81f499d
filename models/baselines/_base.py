"""Shared machinery for score-matrix recommenders: id maps, the seen mask and a deterministic top-K.

Every baseline reduces to "a dense score row per user"; doing the masking and ranking once here keeps
the baselines to their one idea each and guarantees they all treat seen items and ties the same way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from models.data import event_weights

#: Popularity's weight when it only breaks ties under an item-to-item score.
FALLBACK_SCALE = 1e-6
#: Users scored per block: bounds the dense (users × items) score matrix to ~160 MB at 20k items.
BATCH_USERS = 1024


def ages_in_days(events: pd.DataFrame, now: pd.Timestamp | None = None) -> np.ndarray:
    """Each event's age in days at ``now`` (default: the newest event, the honest "now" of a training
    cut; the wall clock would make a model depend on when it was fitted); never negative."""
    ts = pd.to_datetime(events["ts"], utc=True)
    cut = pd.Timestamp(now) if now is not None else ts.max()
    return ((cut - ts).dt.total_seconds() / 86_400.0).clip(lower=0.0).to_numpy()


class ScoringRecommender(ABC):
    """Fit builds id maps and the user × item matrices; subclasses only say how to score users."""

    item_ids_: np.ndarray
    popularity_: np.ndarray

    def fit(self, train: pd.DataFrame, catalog: pd.DataFrame | None = None) -> Self:
        """Learn from ``train`` events; ``catalog`` widens the item universe to never-seen items."""
        item_sources = [train["item_id"].astype(str)]
        if catalog is not None:
            item_sources.append(catalog["item_id"].astype(str))
        self.item_ids_ = np.unique(pd.concat(item_sources).to_numpy())
        self._item_index = pd.Index(self.item_ids_)
        self._user_index = pd.Index(np.unique(train["user_id"].astype(str).to_numpy()))
        rows = self._user_index.get_indexer(train["user_id"].astype(str))
        cols = self._item_index.get_indexer(train["item_id"].astype(str))
        shape = (len(self._user_index), len(self._item_index))
        weights = event_weights(train)
        self.interactions_ = sp.csr_matrix((weights, (rows, cols)), shape=shape)
        self.interactions_.sum_duplicates()
        self.seen_ = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=shape)
        self.seen_.sum_duplicates()
        self.popularity_ = np.asarray(self.interactions_.sum(axis=0), dtype=np.float64).ravel()
        self._fit(train, rows, cols, weights)
        return self

    def _fit(self, train: pd.DataFrame, rows: np.ndarray, cols: np.ndarray, weights: np.ndarray) -> None:
        """Hook for model-specific state; ``rows``/``cols`` are the events' user/item indices."""
        return None

    @abstractmethod
    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        """Dense (len(user_rows), n_items) scores; a row index of -1 is a user unseen in training."""

    def _popularity_rows(self, n: int) -> np.ndarray:
        return np.broadcast_to(self.popularity_, (n, len(self.popularity_))).copy()

    def _over_popularity(
        self, user_rows: np.ndarray, personal: Callable[[np.ndarray], np.ndarray]
    ) -> np.ndarray:
        """``personal(rows)`` (dense scores of known users) over popularity scaled down to a tie-breaker
        (far below one unit of personal score): users without history get the popularity ranking."""
        scores = self._popularity_rows(len(user_rows))
        top = scores.max() if scores.size else 0.0
        if top > 0:
            scores *= FALLBACK_SCALE / top
        known = np.flatnonzero(user_rows >= 0)
        if known.size:
            scores[known] += personal(user_rows[known])
        return scores

    def _item_to_item_scores(
        self, user_rows: np.ndarray, profile: sp.csr_matrix, item_item: sp.csr_matrix
    ) -> np.ndarray:
        """``profile[user] @ item_item`` for known users, over the popularity tie-breaker."""
        return self._over_popularity(user_rows, lambda rows: (profile[rows] @ item_item).toarray())

    def recommend(self, user_ids: Sequence[str], k: int, exclude_seen: bool = True) -> dict[str, list[str]]:
        """Top-``k`` item ids per user, best first, never an item the user touched in training.

        Ties are broken by item id so results are reproducible; lists are shorter than ``k`` only when
        the user has seen nearly the whole catalog.
        """
        users = [str(u) for u in user_ids]
        out: dict[str, list[str]] = {}
        n_items = len(self.item_ids_)
        if k <= 0 or n_items == 0:
            return {u: [] for u in users}
        kk = min(k, n_items)
        for start in range(0, len(users), BATCH_USERS):
            batch = users[start : start + BATCH_USERS]
            rows = self._user_index.get_indexer(batch)
            scores = np.array(self._score(rows), dtype=np.float64)
            if exclude_seen:
                known = np.flatnonzero(rows >= 0)
                r, c = self.seen_[rows[known]].nonzero()
                scores[known[r], c] = -np.inf
            top = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
            vals = np.take_along_axis(scores, top, axis=1)
            order = np.lexsort((top, -vals), axis=-1)
            top = np.take_along_axis(top, order, axis=1)
            vals = np.take_along_axis(vals, order, axis=1)
            for user, items, v in zip(batch, top, vals, strict=True):
                out[user] = self.item_ids_[items[np.isfinite(v)]].tolist()
        return out
