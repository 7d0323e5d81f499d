"""One path for every event, whatever its source: read → parse → Great Expectations gate → lake or quarantine.

The counts always reconcile: ``read == accepted + duplicates + quarantined``. That is checked here,
on every batch, and a mismatch is a failed job, never a log line. A duplicate is the same ``event_id``
with the same content (a replay); the same id with other content is a conflict, quarantined with both
versions (the one the lake keeps and the one that came in) and counted among the quarantined.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from aisle.core.errors import AisleError
from aisle.core.schemas import EVENT_SCHEMA, REJECTED_SCHEMA, USER_SCHEMA
from aisle.core.settings import Settings, ensure_home
from ingestion.ingest_log import record_batch
from ingestion.lake import EventLake, Quarantine, WriteCounts
from ingestion.outcomes import batch_problem, reason_counts
from ingestion.parsing import USERS, parse
from ingestion.readers import ReadResult
from ingestion.rejects import display, empty_rejected, rejected_table, rows_as_json, with_originals

if TYPE_CHECKING:
    from ingestion.validation import GateResult

CONFLICT = "event_id conflict: the lake holds this id with other content"


def empty_events() -> pa.Table:
    return EVENT_SCHEMA.empty_table()


@dataclass
class IngestCounts:
    read: int = 0
    accepted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    refused_batches: int = 0
    conflicts: int = 0  # among the quarantined: same event_id, other content

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
    #: Where the time went (shared by the batches of one :meth:`Ingester.ingest_many` call): parse, gate,
    #: lake (write + fsync), quarantine.
    seconds: dict[str, float] = field(default_factory=dict)

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
    docs: bool = False  # record GE results for Data Docs (batch jobs; the stream leaves it off)
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
        return self.ingest_many([result])[0]

    def ingest_many(self, results: list[ReadResult]) -> list[BatchOutcome]:
        """Several batches (small files) in one GE run, one lake write and one quarantine write; each
        keeps its own refusal decision and its own counts."""
        started = time.perf_counter()
        gates = self.gate.check_many(
            [(r.rows, r.source, r.rejected.num_rows) for r in results], known_items=self.known_items
        )
        gated = time.perf_counter()
        goods = [g.good for g in gates]
        sizes = [t.num_rows for t in goods]
        lake = self.lake.write(pa.concat_tables(goods)) if sum(sizes) else WriteCounts()
        written = time.perf_counter()
        fresh = _split(lake.fresh, sizes)
        conflicted = _split(lake.conflicted, sizes)
        bads = []
        for result, gate, conflict in zip(results, gates, conflicted, strict=True):
            parts = [result.rejected, with_originals(gate.bad, result.originals)]
            if conflict.any():
                parts.append(self._conflicts(result, gate, conflict))
            bads.append(pa.concat_tables([t.cast(REJECTED_SCHEMA) for t in parts]))
        bad_sizes = [t.num_rows for t in bads]
        quarantine = self.quarantine.write(pa.concat_tables(bads)) if sum(bad_sizes) else WriteCounts()
        parse_s = float(gates[0].stats.get("seconds", {}).get("parse", 0.0)) if gates else 0.0
        seconds = {
            "parse": parse_s,
            "gate": max(gated - started - parse_s, 0.0),
            "lake": written - gated,
            "quarantine": time.perf_counter() - written,
        }
        q_fresh = _split(quarantine.fresh, bad_sizes)
        outcomes = []
        for k, (result, gate, bad) in enumerate(zip(results, gates, bads, strict=True)):
            refused, rate = gate.refused, gate.failure_rate
            if not result.rows.num_rows and result.read:
                rate = 1.0  # every row was unreadable
            counts = IngestCounts(
                read=result.read,
                accepted=int(fresh[k].sum()),
                duplicates=int((~fresh[k] & ~conflicted[k]).sum() + (~q_fresh[k]).sum()),
                quarantined=int(q_fresh[k].sum()),
                refused_batches=int(refused),
                conflicts=int(conflicted[k].sum()),
            )
            counts.check(result.source)
            reasons = reason_counts(bad)
            record_batch(
                self.settings.paths.ingest_log, result.source, counts.as_dict(), bad.num_rows, reasons
            )
            outcomes.append(BatchOutcome(counts, gate.good, refused, rate, reasons, seconds))
        return outcomes

    def _conflicts(self, result: ReadResult, gate: GateResult, conflict: np.ndarray) -> pa.Table:
        """Quarantine rows for events whose id the lake (or an earlier row) holds with other content: the
        exact bytes that came in, and a text showing both versions."""
        incoming = gate.good.filter(pa.array(conflict))
        positions = gate.positions
        kept = self.lake.versions(incoming["event_id"])
        kept_text = dict(zip(kept["event_id"].to_pylist(), rows_as_json(kept).to_pylist(), strict=True))
        where = positions[conflict]
        if result.originals is not None:
            raw = result.originals.take(pa.array(where)).to_pylist()
        else:
            raw = [t.encode() for t in rows_as_json(incoming).to_pylist()]
        text = [
            f"{display(r)} ⟂ kept in the lake: {kept_text.get(i, '(an earlier row of this batch)')}"
            for r, i in zip(raw, incoming["event_id"].to_pylist(), strict=True)
        ]
        return rejected_table(text, [CONFLICT] * len(text), result.source, "dedup", raw=raw, positions=where)

    def gates(self) -> list[Any]:
        """The gates this ingester built (whose recorded results a job publishes to Data Docs)."""
        return [g for g in (self.gate, self._catalog_gate) if g is not None]

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

    def ingest_users(self, table: pa.Table, source: str = "users") -> dict[str, int]:
        """Users carry attributes, not events: typed like everything else, then merged by user_id."""
        typed, bad = parse(table, USERS, source)
        size = self.lake.upsert_users(typed.select(USER_SCHEMA.names)) if typed.num_rows else 0
        quarantined = Quarantine(self.settings.paths.quarantine, "users").write(bad).written
        return {"read": table.num_rows, "accepted": typed.num_rows, "quarantined": quarantined, "users": size}


def _split(mask: np.ndarray | None, sizes: list[int]) -> list[np.ndarray]:
    """A per-row mask over concatenated batches, cut back into one mask per batch."""
    if mask is None:
        return [np.zeros(n, dtype=bool) for n in sizes]
    return np.split(mask, np.cumsum(sizes)[:-1]) if sizes else []


__all__ = ["CONFLICT", "BatchOutcome", "IngestCounts", "Ingester", "empty_events", "empty_rejected"]
