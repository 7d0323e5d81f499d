"""What the models read from the lake: the interaction log and the catalog, as pandas frames.

One loader for training, evaluation and batch scoring, so they all see the same columns and types;
bring-your-own data arrives through the same lake (``aisle data import``) and needs nothing extra.
Every event frame the loader returns carries ``grade`` (NaN: not an interaction) and ``weight``,
computed once by the core's rules under the settings' rating scale, so a rating counts by its stars in
labels, evaluation and every model's weights alike; :func:`event_grades` / :func:`event_weights` read
them (or apply the default scale to a frame that lacks them, as tests build).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from aisle.core.errors import BadInput
from aisle.core.schemas import interaction_grades, interaction_weights
from aisle.core.settings import Settings
from ingestion.lake import EventLake

EVENT_COLUMNS = ("event_id", "event_type", "user_id", "item_id", "ts", "session_id", "value")
CATALOG_COLUMNS = ("item_id", "category", "brand", "price", "in_stock", "created_at")


def load_events(settings: Settings, until: pd.Timestamp | None = None) -> pd.DataFrame:
    """The whole event lake (optionally only events before ``until``), sorted by time.

    Raises BadInput when the lake is empty, because every model step needs interactions.
    """
    table = EventLake(settings.paths.lake).read()
    if table.num_rows == 0:
        raise BadInput(
            f"the event lake at {settings.paths.lake} is empty; run `aisle ingest batch`, "
            "`aisle data import` or `aisle demo` first"
        )
    if until is not None:
        table = table.filter(pc.less(table["ts"], until.to_pydatetime()))
    columns = [c for c in EVENT_COLUMNS if c in table.column_names]
    frame = table.select(columns).to_pandas()
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    for col in ("user_id", "item_id", "event_type"):
        frame[col] = frame[col].astype(str)
    value = frame.get("value", None)
    frame["grade"] = interaction_grades(frame["event_type"], value, settings.rating_scale)
    frame["weight"] = interaction_weights(frame["event_type"], value, settings.rating_scale)
    return frame.sort_values(
        ["ts", "event_id"] if "event_id" in frame else ["ts"], kind="stable"
    ).reset_index(drop=True)


def load_catalog(settings: Settings) -> pd.DataFrame | None:
    """The catalog the lake holds (None for interaction-only imports)."""
    table = EventLake(settings.paths.lake).read_catalog()
    if table is None or table.num_rows == 0:
        return None
    columns = [c for c in CATALOG_COLUMNS if c in table.column_names]
    frame = table.select(columns).to_pandas()
    frame["item_id"] = frame["item_id"].astype(str)
    return frame.reset_index(drop=True)


def read_user_file(path: str) -> list[str]:
    """User ids from a file: one id per line, or a CSV with a ``user_id`` column (blank lines ignored)."""
    from pathlib import Path

    source = Path(path)
    if not source.is_file():
        raise BadInput(f"--users {path}: no such file")
    text = source.read_text(encoding="utf-8", errors="replace")
    lines = [line.strip() for line in text.splitlines()]
    header = [h.strip().strip('"') for h in lines[0].split(",")] if lines else []
    if "user_id" in header:
        frame = pd.read_csv(source, dtype=str, keep_default_na=False)
        users = [u.strip() for u in frame["user_id"].tolist()]
    else:
        if any("," in line for line in lines):
            raise BadInput(f"--users {path}: a CSV needs a user_id column (header: {lines[0]!r})")
        users = lines
    users = [u for u in users if u]
    if not users:
        raise BadInput(f"--users {path}: no user ids found")
    return list(dict.fromkeys(users))  # de-duplicated, order kept


def event_grades(events: pd.DataFrame) -> np.ndarray:
    """Graded relevance per event (NaN: not an interaction), from ``grade`` when the loader set it."""
    if "grade" in events.columns:
        return events["grade"].to_numpy(dtype=np.float64, na_value=np.nan)
    return interaction_grades(events["event_type"], events.get("value", None))


def event_weights(events: pd.DataFrame) -> np.ndarray:
    """Implicit-feedback weight per event (0: none), from ``weight`` when the loader set it."""
    if "weight" in events.columns:
        return events["weight"].to_numpy(dtype=np.float64, na_value=0.0)
    return interaction_weights(events["event_type"], events.get("value", None))
