"""`aisle data import`: a shop's own history through the same gate as everything else.

An import is history: the shop-opening check (``AISLE_SHOP_OPENED_AT``) guards live feeds and does not
apply to it, so a public ratings log from the 1990s imports with no setting changed. Everything else is
judged as usual. ``dry_run`` reads, maps and judges the file exactly as the import would, and writes
nothing: not the lake, not the quarantine, no Great Expectations store.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from aisle.core.settings import Settings
from ingestion.importers import check_import_path, interactions_to_events, normalise_catalog
from ingestion.lake import EventLake
from ingestion.outcomes import batch_problem, reason_counts, top_reasons
from ingestion.parsing import timestamp_reading
from ingestion.pipeline import Ingester
from ingestion.readers import ReadResult, read_file

EXAMPLES = 5  # rejected rows shown by a dry run


def import_history(
    settings: Settings,
    interactions: Path,
    catalog: Path | None = None,
    *,
    default_event_type: str = "view",
    dry_run: bool = False,
) -> dict[str, Any]:
    started = time.perf_counter()
    check_import_path(interactions)
    if catalog is not None:
        check_import_path(catalog)
    limit = settings.max_line_bytes
    raw = read_file(interactions, limit)
    events, mapping = interactions_to_events(raw.rows, str(interactions), default_event_type)
    batch = ReadResult(events, raw.rejected, str(interactions), raw.originals)
    catalog_rows = None
    if catalog is not None:
        catalog_rows = normalise_catalog(read_file(catalog, limit).rows, str(catalog))
    explained = {
        "source": str(interactions),
        "mapping": mapping.as_dict(),
        "timestamps": timestamp_reading(events["ts"]) if events.num_rows else {},
    }
    if dry_run:
        summary = _dry_run(settings, batch, catalog_rows, str(catalog))
        return {**summary, **explained, "seconds": round(time.perf_counter() - started, 3)}
    ingester = Ingester(settings, history=True)
    catalog_summary = None
    if catalog_rows is not None:
        catalog_summary = ingester.ingest_catalog(catalog_rows, str(catalog))
    outcome = ingester.ingest_events(batch)
    problem = outcome.problem(f"import of {interactions}", settings)
    return {
        "ok": problem is None,
        "problem": problem,
        **outcome.counts.as_dict(),
        **explained,
        "top_reasons": top_reasons(outcome.reasons),
        "catalog": catalog_summary,
        "lake": str(settings.paths.lake),
        "seconds": round(time.perf_counter() - started, 3),
    }


def _dry_run(
    settings: Settings,
    batch: ReadResult,
    catalog_rows: pa.Table | None,
    catalog_source: str,
) -> dict[str, Any]:
    """Judge the batch as :meth:`Ingester.ingest_events` would, against the lake as it is; write nothing."""
    from ingestion.validation import CatalogGate, EventGate

    lake = EventLake(settings.paths.lake)
    known = lake.known_items()
    catalog_summary = None
    if catalog_rows is not None:
        judged = CatalogGate(settings).check(catalog_rows, source=catalog_source)
        catalog_summary = {"read": catalog_rows.num_rows, "would_accept": judged.good.num_rows}
        known = (known or set()) | set(judged.good["item_id"].to_pylist())
    gate = EventGate(settings, history=True)
    result = gate.check(
        batch.rows, known_items=known, source=batch.source, already_rejected=batch.rejected.num_rows
    )
    bad = pa.concat_tables([batch.rejected, result.bad]) if batch.rejected.num_rows else result.bad
    reasons = reason_counts(bad)
    new = int((~lake.holds(result.good)).sum()) if result.good.num_rows else 0
    problem = batch_problem(
        f"dry run of the import of {batch.source}",
        read=batch.read,
        passed=result.good.num_rows,
        refused=result.refused,
        failure_rate=result.failure_rate,
        reasons=reasons,
        settings=settings,
        written=False,
    )
    return {
        "ok": problem is None,
        "problem": problem,
        "dry_run": True,
        "read": batch.read,
        "would_accept": new,
        "already_in_lake": result.good.num_rows - new,
        "would_quarantine": bad.num_rows,
        "refused": result.refused,
        "top_reasons": top_reasons(reasons),
        "examples": bad.select(["row", "reason"]).slice(0, EXAMPLES).to_pylist(),
        "catalog": catalog_summary,
    }
