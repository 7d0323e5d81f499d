"""One experiment version's exposures with what followed each: the analysis's input, from the lake.

Outcomes are attributed against every exposure served while the experiment ran (not only its own), so an
event whose ``request_id`` names an answer outside the experiment is matched there rather than reported
as unmatched; then the experiment's own exposures are kept. The result is written beside the analysis
(``$AISLE_HOME/experiments/KEY/vN/attributed.parquet``) for whoever wants to check a number by hand.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from aisle.core.schemas import LABEL_GRADES
from aisle.core.settings import Settings
from ingestion.exposures import read_exposures
from ingestion.lake import EventLake
from monitoring.attribution import attribute, exposure_outcomes
from serving.experiments.store import Experiment


@dataclass
class Attributed:
    frame: pd.DataFrame  # one row per exposure of the experiment version (see exposure_outcomes)
    counts: dict[str, Any]


def experiment_dir(settings: Settings, exp: Experiment) -> Path:
    return settings.paths.experiments / exp.key / f"v{exp.version}"


def attribute_experiment(
    settings: Settings, exp: Experiment, *, until: datetime, window: timedelta
) -> Attributed:
    """Join the experiment's exposures with the lake's outcome events up to ``until`` (+ the window)."""
    if exp.started_at is None:
        raise ValueError(f"experiment {exp.key} v{exp.version} never started")
    started = time.perf_counter()
    exposures = read_exposures(settings.paths.exposures, exp.started_at, until)
    events = (
        EventLake(settings.paths.lake)
        .read_range("ts", exp.started_at, until + window)
        .filter(pc.is_in(pc.field("event_type"), pa.array(list(LABEL_GRADES))))
        .to_pandas()
        if exposures.num_rows
        else pd.DataFrame(columns=["event_id", "event_type", "user_id", "item_id", "ts", "request_id"])
    )
    joined = attribute(exposures, events, window)
    mine = exposures.filter(
        pc.and_(
            pc.equal(exposures["experiment"], pa.scalar(exp.key)),
            pc.equal(exposures["experiment_version"], pa.scalar(exp.version, pa.int32())),
        )
    )
    frame = exposure_outcomes(mine, joined)
    seconds = time.perf_counter() - started
    counts: dict[str, Any] = {
        **joined.counts(),
        "experiment_exposures": int(mine.num_rows),
        "window_hours": round(window.total_seconds() / 3600, 3),
        "seconds": round(seconds, 3),
        "events_per_s": round(len(events) / seconds) if seconds > 0 else None,
    }
    out = experiment_dir(settings, exp) / "attributed.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    frame.to_parquet(tmp, index=False)
    tmp.replace(out)
    counts["path"] = str(out)
    return Attributed(frame, counts)
