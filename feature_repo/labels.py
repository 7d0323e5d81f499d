"""Graded labels from the lake for ad-hoc training sets (`aisle features training-set`).

Each positive is the user's interaction graded as the core grades it (``interaction_grades``: event
types by ``LABEL_GRADES``, ratings by their stars) at the instant it happened, so the
point-in-time join that follows gives it only the features known then.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from aisle.core.errors import BadInput
from aisle.core.schemas import INTERACTION_TYPES, interaction_grades
from aisle.core.settings import Settings
from ingestion.lake import EventLake


def label_frame(settings: Settings, *, days: int | None, limit: int, negatives: int, seed: int) -> Any:
    """Graded labels from the lake (purchase, 4-5 stars 3 > cart/wishlist 2 > view/click, 1-3 stars 1),
    newest ``days``, plus
    ``negatives`` random catalog items per positive (label 0) at the same instant."""
    lake = EventLake(settings.paths.lake)
    events = lake.read().select(["user_id", "item_id", "event_type", "ts", "value"])
    if events.num_rows == 0:
        raise BadInput("the event lake is empty; run `aisle ingest batch` or `aisle ingest stream` first")
    events = events.filter(pc.is_in(events["event_type"], pa.array(list(INTERACTION_TYPES))))
    if days is not None:
        newest = pc.max(events["ts"]).as_py()
        events = events.filter(pc.greater_equal(events["ts"], pd.Timestamp(newest) - pd.Timedelta(days=days)))
    frame = events.to_pandas()
    rng = np.random.default_rng(seed)
    if len(frame) > limit:
        frame = frame.iloc[np.sort(rng.choice(len(frame), limit, replace=False))]
    frame = frame.rename(columns={"ts": "event_timestamp"})
    grades = interaction_grades(frame.pop("event_type"), frame.pop("value"), settings.rating_scale)
    frame["label"] = grades.astype("int64")
    if negatives > 0:
        catalog = lake.read_catalog()
        items = np.asarray(
            catalog["item_id"] if catalog is not None else frame["item_id"].unique(), dtype=object
        )
        neg = frame.loc[frame.index.repeat(negatives), ["user_id", "event_timestamp"]].copy()
        neg["item_id"] = items[rng.integers(0, len(items), len(neg))]
        neg["label"] = 0
        frame = pd.concat([frame, neg], ignore_index=True)
    return frame.reset_index(drop=True)
