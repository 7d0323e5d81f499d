"""Ratings are interactions, graded by their stars as documented in ``aisle.core.schemas.RatingScale``:
4–5 stars strong (grade 3, weight 5, like a purchase), 1–3 weak (grade 1, weight 1, like a view), a
rating without stars weak; ``AISLE_RATING_STRONG_MIN`` moves the threshold everywhere at once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from aisle.core.schemas import RatingScale, interaction_grades, interaction_weights
from aisle.core.settings import load_settings
from feature_repo.user_recent import from_events
from models.baselines import PopularityRecommender
from models.data import event_grades, event_weights
from models.evaluation import temporal_split

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def frame(rows: list[tuple[str, str, str, float | None, int]]) -> pd.DataFrame:
    """(user, item, event_type, stars, day) → an event frame."""
    return pd.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(len(rows))],
            "user_id": [r[0] for r in rows],
            "item_id": [r[1] for r in rows],
            "event_type": [r[2] for r in rows],
            "value": [r[3] for r in rows],
            "ts": [T0 + pd.Timedelta(days=r[4]) for r in rows],
        }
    )


def test_default_scale_grades_and_weighs_stars() -> None:
    types = pd.Series(["rating"] * 6 + ["view", "purchase", "remove_from_cart"])
    stars = pd.Series([5, 4, 3, 2, 1, None, None, None, None], dtype="float64")
    grades = interaction_grades(types, stars)
    assert grades[:6].tolist() == [3, 3, 1, 1, 1, 1] and grades[6:8].tolist() == [1, 3]
    assert np.isnan(grades[8])  # a cart removal is no interaction
    assert interaction_weights(types, stars).tolist() == [5, 5, 1, 1, 1, 1, 1, 5, 0]
    lenient = RatingScale(strong_min=3.0)
    assert interaction_grades(types, stars, lenient)[:3].tolist() == [3, 3, 3]


def test_the_setting_moves_the_threshold(tmp_path: Path) -> None:
    assert load_settings(home=tmp_path).rating_scale == RatingScale()
    assert load_settings(home=tmp_path, rating_strong_min=5.0).rating_scale.strong_min == 5.0


def test_ratings_are_relevant_in_evaluation_recent_items_and_popularity() -> None:
    events = frame(
        [
            ("u1", "liked", "rating", 5, 0),
            ("u2", "liked", "rating", 4, 1),
            ("u3", "meh", "rating", 2, 2),
            ("u3", "seen", "view", None, 3),
            ("u1", "later", "rating", 5, 20),  # in the holdout: relevant with grade 3
            ("u3", "later2", "rating", 1, 21),  # in the holdout: relevant with grade 1
        ]
    )
    assert event_grades(events).tolist()[:3] == [3, 3, 1] and event_weights(events)[0] == 5
    split = temporal_split(events, holdout_days=5)
    assert split.relevant_items() == {"u1": {"later": 3}, "u3": {"later2": 1}}
    # two five-star ratings weigh more than a view and a two-star rating
    top = PopularityRecommender().fit(split.train).recommend(["new"], 2)["new"]
    assert top[0] == "liked"
    (u3,) = [r for r in from_events(split.train).to_pylist() if r["user_id"] == "u3"]
    assert u3["recent_items"] == ["seen", "meh"] and u3["recent_types"] == ["view", "rating"]
