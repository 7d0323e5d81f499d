"""Each shopper's activity before an experiment started: CUPED's covariate.

Events in the lake in the ``days`` before the start, counted per shopper. The window ends at the last
event the lake holds before the start, not at the start itself, so a shop whose history stops some time
before the experiment (an import, the generated demo shop) still has a pre-period; for a live shop the
two are the same moment. Anything recorded after the start is excluded, whatever the experiment did.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from ingestion.lake import EventLake

DEFAULT_DAYS = 28


def activity_before(
    lake_root: Path, start: datetime, days: int = DEFAULT_DAYS
) -> tuple[pd.Series, dict[str, object]]:
    """Events per user id in the pre-period, and where that window lay."""
    lake = EventLake(lake_root)
    parts = lake.parts()
    empty = pd.Series(dtype=float)
    if not parts:
        return empty, {"events": 0, "window": None}
    ts_type = lake.schema.field("ts").type
    dataset = ds.dataset(parts, format="parquet", schema=lake.schema)
    before = dataset.to_table(columns=["user_id", "ts"], filter=ds.field("ts") < pa.scalar(start, ts_type))
    if before.num_rows == 0:
        return empty, {"events": 0, "window": None}
    end = pc.max(before["ts"]).as_py()
    begin = end - timedelta(days=days)
    window = before.filter(pc.greater_equal(before["ts"], pa.scalar(begin, ts_type)))
    counts = pc.value_counts(window["user_id"]).to_pylist()
    series = pd.Series({str(c["values"]): float(c["counts"]) for c in counts}, dtype=float)
    return series, {"events": int(window.num_rows), "window": [begin.isoformat(), end.isoformat()]}
