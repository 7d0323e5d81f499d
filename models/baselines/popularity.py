"""Most-interacted items, weighted by event type: the bar every personalised model has to clear."""

from __future__ import annotations

import numpy as np

from models.baselines._base import ScoringRecommender


class PopularityRecommender(ScoringRecommender):
    """Same ranking for everyone (minus what each user has already seen)."""

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        return self._popularity_rows(len(user_rows))
