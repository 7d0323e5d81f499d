"""Popularity with exponential time decay, so this week's hits outrank last month's."""

from __future__ import annotations

import numpy as np
import pandas as pd

from feature_repo.tables import TRENDING_HALF_LIFE_DAYS
from models.baselines._base import ScoringRecommender, ages_in_days


class TrendingRecommender(ScoringRecommender):
    """Score = sum of event weight × 0.5^(age in days / half-life), age measured from the train cutoff.

    The cutoff (latest training event unless ``now`` is given) is the honest "now": measuring from the
    wall clock would make the ranking depend on when the model was fitted.
    """

    def __init__(self, half_life_days: float = TRENDING_HALF_LIFE_DAYS, now: pd.Timestamp | None = None):
        if half_life_days <= 0:
            raise ValueError(f"half_life_days must be positive (got {half_life_days})")
        self.half_life_days = half_life_days
        self.now = now

    def _fit(self, train: pd.DataFrame, rows: np.ndarray, cols: np.ndarray, weights: np.ndarray) -> None:
        decayed = weights * np.power(0.5, ages_in_days(train, self.now) / self.half_life_days)
        self.trending_ = np.bincount(cols, weights=decayed, minlength=len(self.item_ids_))

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.trending_, (len(user_rows), len(self.trending_))).copy()
