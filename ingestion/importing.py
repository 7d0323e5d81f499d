"""`aisle data import`: a shop's own history through the same gate as everything else."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from aisle.core.settings import Settings
from ingestion.importers import check_import_path, interactions_to_events, normalise_catalog
from ingestion.pipeline import Ingester
from ingestion.readers import ReadResult, read_file


def import_history(
    settings: Settings, interactions: Path, catalog: Path | None = None, *, default_event_type: str = "view"
) -> dict[str, Any]:
    started = time.perf_counter()
    check_import_path(interactions)
    if catalog is not None:
        check_import_path(catalog)
    ingester = Ingester(settings)
    catalog_summary = None
    if catalog is not None:
        catalog_summary = ingester.ingest_catalog(
            normalise_catalog(read_file(catalog).rows, str(catalog)), str(catalog)
        )
    raw = read_file(interactions)
    events = interactions_to_events(raw.rows, str(interactions), default_event_type)
    counts = ingester.ingest_events(ReadResult(events, raw.rejected, str(interactions))).counts
    return {
        **counts.as_dict(),
        "source": str(interactions),
        "catalog": catalog_summary,
        "lake": str(settings.paths.lake),
        "seconds": round(time.perf_counter() - started, 3),
    }
