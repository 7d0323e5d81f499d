"""One path for every event, whatever its source: read → parse → Great Expectations gate → lake or quarantine.

The counts always reconcile: ``read == accepted + duplicates + quarantined``. That is checked here,
on every batch, and a mismatch is a failed job, never a log line.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from aisle.core.errors import AisleError, BadInput
from aisle.core.schemas import EVENT_SCHEMA, REJECTED_SCHEMA
from aisle.core.settings import Settings, ensure_home
from ingestion.lake import EventLake, Quarantine, WriteCounts
from ingestion.outcomes import batch_problem, job_problem, reason_counts, top_reasons
from ingestion.readers import ReadResult, file_format, read_file
from ingestion.rejects import empty_rejected

DIR_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".parquet")

Progress = Callable[[str, int], None]


def empty_events() -> pa.Table:
    return EVENT_SCHEMA.empty_table()


@dataclass
class IngestCounts:
    read: int = 0
    accepted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    refused_batches: int = 0

    def __iadd__(self, other: IngestCounts) -> IngestCounts:
        for name in asdict(self):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self

    def check(self, where: str) -> None:
        total = self.accepted + self.duplicates + self.quarantined
        if self.read != total:
            raise AisleError(
                f"reconciliation failed for {where}: read {self.read} != accepted {self.accepted} + "
                f"duplicates {self.duplicates} + quarantined {self.quarantined}"
            )

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class BatchOutcome:
    """What one batch did: its counts, and the rows the gate judged good (typed, in the event schema).

    ``good`` is what the gate passed, before the lake's deduplication: a replayed event is in it again,
    which is what a consumer folding a shopper's state idempotently wants.
    """

    counts: IngestCounts
    good: pa.Table
    refused: bool = False
    failure_rate: float = 0.0
    reasons: Counter[str] = field(default_factory=Counter)

    def problem(self, what: str, settings: Settings) -> str | None:
        """Why this batch failed its job (see :mod:`ingestion.outcomes`), or None."""
        return batch_problem(
            what,
            read=self.counts.read,
            passed=self.good.num_rows,
            refused=self.refused,
            failure_rate=self.failure_rate,
            reasons=self.reasons,
            settings=settings,
        )


@dataclass
class Ingester:
    """Holds the lake, the quarantine and the (expensive to build) validation gate for many batches."""

    settings: Settings
    docs: bool = False  # store GE results for Data Docs (batch jobs; the stream leaves it off)
    history: bool = False  # an imported dataset's own past: the shop-opening check does not apply
    lake: EventLake = field(init=False)
    quarantine: Quarantine = field(init=False)
    catalog_quarantine: Quarantine = field(init=False)
    known_items: set[str] | None = field(init=False)

    def __post_init__(self) -> None:
        from ingestion.validation import CatalogGate, EventGate

        ensure_home(self.settings)
        self.lake = EventLake(self.settings.paths.lake)
        self.quarantine = Quarantine(self.settings.paths.quarantine, "events")
        self.catalog_quarantine = Quarantine(self.settings.paths.quarantine, "catalog")
        self.gate = EventGate(self.settings, docs=self.docs, history=self.history)
        self._catalog_gate: CatalogGate | None = None  # built on first use: most jobs see no catalog
        self.known_items = self.lake.known_items()

    def ingest_events(self, result: ReadResult) -> BatchOutcome:
        """Gate one batch of events and write it; the batch is the unit the failure threshold applies to.

        Returns the counts and the rows that were judged good (what a stream's ``on_batch`` hook sees).
        """
        rows, rejected, source = result.rows, result.rejected, result.source
        good, gate_bad, refused, rate = empty_events(), empty_rejected(), False, 0.0
        if rows.num_rows:
            gate = self.gate.check(
                rows, known_items=self.known_items, source=source, already_rejected=rejected.num_rows
            )
            good, gate_bad, refused, rate = gate.good, gate.bad, gate.refused, gate.failure_rate
        elif result.read:
            rate = 1.0  # every row was unreadable
        lake = self.lake.write(good) if good.num_rows else WriteCounts()
        bad = pa.concat_tables([t.cast(REJECTED_SCHEMA) for t in (rejected, gate_bad)])
        quarantine = self.quarantine.write(bad)
        counts = IngestCounts(
            read=result.read,
            accepted=lake.written,
            duplicates=lake.duplicates + quarantine.duplicates,
            quarantined=quarantine.written,
            refused_batches=int(refused),
        )
        counts.check(source)
        return BatchOutcome(counts, good, refused, rate, reason_counts(bad))

    def ingest_catalog(self, table: pa.Table, source: str) -> dict[str, int]:
        from ingestion.validation import CatalogGate

        if self._catalog_gate is None:
            self._catalog_gate = CatalogGate(self.settings, docs=self.docs)
        gate = self._catalog_gate.check(table, source=source)
        size = self.lake.upsert_catalog(gate.good) if gate.good.num_rows else len(self.known_items or ())
        quarantined = self.catalog_quarantine.write(gate.bad).written
        self.known_items = self.lake.known_items()
        return {
            "read": table.num_rows,
            "accepted": gate.good.num_rows,
            "quarantined": quarantined,
            "catalog_size": size,
            "refused": int(gate.refused),
        }

    def ingest_users(self, table: pa.Table) -> int:
        return self.lake.upsert_users(table)


def expand_paths(paths: Iterable[Path]) -> dict[str, list[Path]]:
    """Split inputs into catalog, users and event files. A directory contributes its .csv, .jsonl, .ndjson
    and .parquet files (a stray manifest.json is not mistaken for events); files named explicitly may also
    be .json (JSON Lines)."""
    kinds: dict[str, list[Path]] = {"catalog": [], "users": [], "events": []}
    for path in paths:
        if not path.exists():
            raise BadInput(f"{path}: no such file or directory")
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in DIR_SUFFIXES)
        else:
            file_format(path)  # raises BadInput for an unsupported type
            files = [path]
        for f in files:
            stem = f.stem.lower()
            kind = (
                "catalog" if stem.startswith("catalog") else "users" if stem.startswith("users") else "events"
            )
            kinds[kind].append(f)
    if not any(kinds.values()):
        raise BadInput("no input files found (expected .csv, .jsonl or .parquet)")
    return kinds


def ingest_batch(settings: Settings, paths: list[Path], progress: Progress | None = None) -> dict[str, Any]:
    """`aisle ingest batch`: catalog and users first (so events can be checked against the catalog)."""
    started = time.perf_counter()
    kinds = expand_paths(paths)
    ingester = Ingester(settings, docs=True)
    catalog_summary: dict[str, int] = {}
    for f in kinds["catalog"]:
        for key, value in ingester.ingest_catalog(read_file(f).rows, str(f)).items():
            catalog_summary[key] = catalog_summary.get(key, 0) + value if key != "catalog_size" else value
    users = sum(ingester.ingest_users(read_file(f).rows) for f in kinds["users"])
    totals = IngestCounts()
    files: list[dict[str, Any]] = []
    problems: list[str | None] = []
    reasons: Counter[str] = Counter()
    for f in kinds["events"]:
        outcome = ingester.ingest_events(read_file(f))
        totals += outcome.counts
        reasons.update(outcome.reasons)
        problem = outcome.problem(str(f), settings)
        problems.append(problem)
        files.append(
            {
                "path": str(f),
                **outcome.counts.as_dict(),
                "top_reasons": top_reasons(outcome.reasons),
                "ok": problem is None,
                "problem": problem,
            }
        )
        if progress:
            progress(str(f), outcome.counts.read)
    totals.check("batch")
    from ingestion.validation import build_data_docs

    docs = build_data_docs(settings)
    problem = job_problem(problems, "ingest batch", len(files))
    return {
        "ok": problem is None,
        "problem": problem,
        **totals.as_dict(),
        "top_reasons": top_reasons(reasons),
        "files": files,
        "catalog": catalog_summary or None,
        "users": users or None,
        "lake": str(settings.paths.lake),
        "quarantine": str(settings.paths.quarantine),
        "data_docs": str(docs),
        "seconds": round(time.perf_counter() - started, 3),
    }
