"""Item-kNN: items whose audiences overlap with the items the user already interacted with."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from models.baselines._base import ScoringRecommender, ages_in_days


def _keep_top_per_row(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep each row's ``k`` largest entries: long tails of tiny similarities are mostly noise."""
    matrix = matrix.tocsr()
    data, indices, indptr = matrix.data, matrix.indices, matrix.indptr
    keep = np.zeros(len(data), dtype=bool)
    for r in range(matrix.shape[0]):
        lo, hi = indptr[r], indptr[r + 1]
        if hi - lo <= k:
            keep[lo:hi] = True
        else:
            keep[lo + np.argpartition(-data[lo:hi], k - 1)[:k]] = True
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(indptr))
    return sp.csr_matrix((data[keep], (rows[keep], indices[keep])), shape=matrix.shape)


class ItemKNNRecommender(ScoringRecommender):
    """Cosine similarity between item columns of the weighted user × item matrix.

    Weights are log-damped (``log1p``) so one user's hundred views do not outweigh a purchase by
    someone else. Score(j) = sum of sim(i, j) over the user's items i, neighbourhoods cut to
    ``neighbours``. Users without history get the popularity ranking.
    """

    def __init__(self, neighbours: int = 100):
        if neighbours < 1:
            raise ValueError(f"neighbours must be at least 1 (got {neighbours})")
        self.neighbours = neighbours

    def _fit(self, train: pd.DataFrame, rows: np.ndarray, cols: np.ndarray, weights: np.ndarray) -> None:
        x = self.interactions_.copy()
        x.data = np.log1p(x.data)
        x.eliminate_zeros()
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel())
        inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        xn = sp.csr_matrix(x @ sp.diags(inv))
        sim = (xn.T @ xn).tocsr()
        sim.setdiag(0.0)
        sim.eliminate_zeros()
        self.similarity_ = _keep_top_per_row(sim, self.neighbours)
        self.profile_ = (self.seen_ > 0).astype(np.float64).tocsr()

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        return self._item_to_item_scores(user_rows, self.profile_, self.similarity_)


class DecayedItemKNNRecommender(ItemKNNRecommender):
    """Item-kNN where time counts: every interaction's weight decays with its age at the cutoff
    (0.5^(age / ``half_life_days``)), in the similarities and in the shopper's profile alike, so items
    engaged with together lately, and the shopper's latest items, weigh most. The half-life is tuned on
    the validation period (``models.tuning``)."""

    def __init__(self, neighbours: int = 100, half_life_days: float = 30.0, now: pd.Timestamp | None = None):
        super().__init__(neighbours)
        if half_life_days <= 0:
            raise ValueError(f"half_life_days must be positive (got {half_life_days})")
        self.half_life_days = float(half_life_days)
        self.now = now

    def _fit(self, train: pd.DataFrame, rows: np.ndarray, cols: np.ndarray, weights: np.ndarray) -> None:
        decay = np.power(0.5, ages_in_days(train, self.now) / self.half_life_days)
        shape = self.interactions_.shape
        self.interactions_ = sp.csr_matrix((weights * decay, (rows, cols)), shape=shape)
        self.interactions_.sum_duplicates()
        super()._fit(train, rows, cols, weights)
        self.profile_ = sp.csr_matrix((decay, (rows, cols)), shape=shape)
        self.profile_.sum_duplicates()
