"""Popularity over the most recent window: the strongest simple baseline on shops whose taste drifts.

On real logs split strictly in time, "what was popular in the last few days (or weeks) before the cut"
beats all-time popularity, item-kNN and published sequence models (docs/design.md §8); its window is
tuned on a validation period cut from the training data (``models.tuning``), never on the test period.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.baselines._base import FALLBACK_SCALE, ScoringRecommender, ages_in_days


class RecentPopularityRecommender(ScoringRecommender):
    """Score = summed event weights of the last ``window_days`` before the cutoff (the latest training
    event unless ``now`` is given); all-time popularity breaks ties, so the list is always full."""

    def __init__(self, window_days: float = 7.0, now: pd.Timestamp | None = None):
        if window_days <= 0:
            raise ValueError(f"window_days must be positive (got {window_days})")
        self.window_days = float(window_days)
        self.now = now

    def _fit(self, train: pd.DataFrame, rows: np.ndarray, cols: np.ndarray, weights: np.ndarray) -> None:
        recent = ages_in_days(train, self.now) <= self.window_days
        counts = np.bincount(cols[recent], weights=weights[recent], minlength=len(self.item_ids_))
        top = self.popularity_.max() if self.popularity_.size else 0.0
        tie = self.popularity_ * (FALLBACK_SCALE / top) if top > 0 else 0.0
        self.recent_popularity_ = counts + tie

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.recent_popularity_, (len(user_rows), len(self.recent_popularity_))).copy()
