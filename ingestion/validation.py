"""The data gate: typed rows → Great Expectations suite → good rows or quarantine.

Rows come in as read (CSV/JSONL/Parquet/Kafka): :meth:`EventGate.check` and :meth:`CatalogGate.check`
type them with :mod:`ingestion.parsing` and then judge them, so every path (files, the stream, imports)
parses and validates in this one place. Both stages are lossless: every input row comes out either good or
rejected with a reason. GE is the gate: its ``unexpected_index_list`` (result format COMPLETE) says which
rows failed which expectation, and each expectation carries the reason text in its ``meta`` (see
:mod:`ingestion.expectations`). A batch whose failure rate exceeds ``settings.max_failure_rate`` is refused
whole: nothing passes, everything is quarantined.

Building a GE context and suite (≈2 s, mostly importing GE) costs far more than validating a 5k-row
micro-batch (≈0.1 s), so :class:`EventGate` and :class:`CatalogGate` build them once and are reused for
every batch. Three facts about GE 1.24.1 shape the code (measured on a 2-core VM):

* a large ``value_set`` (a 20k-item catalog) is re-serialised through pydantic hundreds of times per
  validation (≈1.3 s per batch, growing with the catalog). Catalog membership is therefore looked up
  with Arrow into the column ``item_in_catalog``, and GE gates on that column.
* ``Batch.validate`` loads, and fingerprints (hashes every cell of), the DataFrame a second time; the
  gate runs the suite through one validator so each batch is loaded once.
* the pandas engine is far cheaper on Arrow-backed strings and int64 than on Python objects and int32
  (see :func:`ingestion.expectations.frame`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aisle.core.errors import BadInput
from aisle.core.schemas import REJECTED_SCHEMA
from aisle.core.settings import Settings
from ingestion.arrow_gate import ArrowSuite
from ingestion.expectations import (
    CATALOG_FRAME_COLUMNS,
    CATALOG_SUITE,
    EVENT_FRAME_COLUMNS,
    EVENTS_SUITE,
    catalog_expectations,
    event_expectations,
    to_frame,
)
from ingestion.gx_suite import GxSuite, publish
from ingestion.parsing import CATALOG, EVENTS, Contract, parse
from ingestion.rejects import contiguous, empty_rejected, join_reasons, reason_where, reconcile, rejected_rows

if TYPE_CHECKING:
    pass

__all__ = [
    "FUTURE_SKEW",
    "CatalogGate",
    "EventGate",
    "GateResult",
    "build_data_docs",
    "validate_catalog",
    "validate_events",
]

#: The lower bound on ``ts`` when the shop-opening check does not apply (imports): any instant at all.
NO_OPENING: Final = datetime(1, 1, 1, tzinfo=UTC)
#: Clock skew tolerated between producers and this machine before an event counts as "from the future".
FUTURE_SKEW: Final = timedelta(minutes=5)


@dataclass
class GateResult:
    """Outcome of one batch. ``good.num_rows + bad.num_rows`` equals the rows handed in, always."""

    good: pa.Table
    bad: pa.Table
    failure_rate: float
    refused: bool
    stats: dict[str, Any] = field(default_factory=dict)
    #: Position of each good row in the batch as read (to find its original line again).
    positions: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def _rate_text(rate: float, limit: float) -> str:
    a, b = f"{rate:.2f}", f"{limit:.2f}"
    if a == b:  # 0.2049 > 0.20 must not read "0.20 > 0.20"
        a = f"{rate:.4f}"
    return f"{a} > {b}"


class _Gate:
    """Shared by both suites: parse → GE verdicts per row → good/bad split, failure rate, refusal."""

    stage = "validate"
    contract: Contract

    def __init__(self, settings: Settings, suite: GxSuite) -> None:
        self.settings = settings
        self._gx = suite

    def _failures(
        self, rows: pa.Table, source: str, stats: dict[str, Any], context: dict[str, Any]
    ) -> list[tuple[str, np.ndarray]]:
        """Run the suite on conformed, non-empty rows: ``[(reason, failing row positions)]``."""
        raise NotImplementedError

    def _check_many(
        self, batches: Sequence[tuple[pa.Table, str, int]], context: dict[str, Any]
    ) -> list[GateResult]:
        """Parse each batch ``(rows as read, source, rows already rejected upstream)``, run the suite once
        over all of them, and decide each batch on its own (refusal is per batch). One GE run for many
        small files is what keeps their cost per file small."""
        started = time.perf_counter()
        parsed = [parse(raw, self.contract, source) for raw, source, _ in batches]
        parse_s = time.perf_counter() - started
        typed = [
            conform(t, self.contract.schema, self.contract.required, self.contract.name) for t, _ in parsed
        ]
        sizes = np.array([t.num_rows for t in typed], dtype=np.int64)
        stats: dict[str, Any] = {"seconds": {"parse": round(parse_s, 5)}}
        failures: list[tuple[str, np.ndarray]] = []
        if sizes.sum():
            everything = pa.concat_tables([t for t in typed if t.num_rows])
            label = batches[0][1] if len(batches) == 1 else f"{len(batches)} batches from {batches[0][1]}"
            failures = self._failures(everything, label, stats, context)
        offsets = np.r_[0, np.cumsum(sizes)]
        results = []
        for k, ((raw, source, already), (_, parse_bad), rows) in enumerate(
            zip(batches, parsed, typed, strict=True)
        ):
            lo, hi = offsets[k], offsets[k + 1]
            own = [(reason, index[(index >= lo) & (index < hi)] - lo) for reason, index in failures]
            # positions (in the batch as read) of the rows that reached the gate
            kept = np.setdiff1d(np.arange(raw.num_rows), parse_bad["position"].to_numpy(zero_copy_only=False))
            result = self._decide(
                rows,
                [(reason, index) for reason, index in own if len(index)],
                source=source,
                earlier=parse_bad,
                already_rejected=already,
                stats={**stats, "seconds": dict(stats["seconds"]), "parse_rejected": parse_bad.num_rows},
                positions=kept,
            )
            result.stats["seconds"]["total"] = round(time.perf_counter() - started, 4)
            results.append(result)
        return results

    def _check(
        self, raw: pa.Table, source: str, already_rejected: int, context: dict[str, Any]
    ) -> GateResult:
        return self._check_many([(raw, source, already_rejected)], context)[0]

    def _validate(
        self, typed: pa.Table, source: str, already_rejected: int, context: dict[str, Any]
    ) -> GateResult:
        started = time.perf_counter()
        rows = conform(typed, self.contract.schema, self.contract.required, self.contract.name)
        stats: dict[str, Any] = {"seconds": {}}
        failures = self._failures(rows, source, stats, context) if rows.num_rows else []
        result = self._decide(
            rows,
            failures,
            source=source,
            earlier=empty_rejected(),
            already_rejected=already_rejected,
            stats=stats,
            positions=np.arange(rows.num_rows),
        )
        result.stats["seconds"]["total"] = round(time.perf_counter() - started, 4)
        return result

    def _decide(
        self,
        rows: pa.Table,
        failures: list[tuple[str, np.ndarray]],
        *,
        source: str,
        earlier: pa.Table,
        already_rejected: int,
        stats: dict[str, Any],
        positions: np.ndarray,
    ) -> GateResult:
        n = rows.num_rows
        per_reason: list[pa.Array] = []
        failed = np.zeros(n, dtype=bool)
        counts: dict[str, int] = dict(stats.pop("failures", {}))
        for reason, index in failures:
            mask = np.zeros(n, dtype=bool)
            mask[index] = True
            failed |= mask
            per_reason.append(reason_where(pa.array(mask), reason))
            counts[reason] = counts.get(reason, 0) + len(index)
        total = n + earlier.num_rows + already_rejected
        n_bad = int(failed.sum()) + earlier.num_rows + already_rejected
        rate = n_bad / total if total else 0.0
        limit = self.settings.max_failure_rate
        refused = rate > limit
        none = pa.nulls(n, pa.string())
        own = join_reasons(per_reason) if per_reason else none
        if refused:
            prefix = f"batch refused (failure rate {_rate_text(rate, limit)}): "
            own = pc.binary_join_element_wise(prefix, pc.fill_null(own, "row passed its checks"), "")
            earlier = earlier.set_column(
                1, "reason", pc.binary_join_element_wise(prefix, earlier["reason"], "")
            )
            good = rows.slice(0, 0)
            good_positions = positions[:0]
            bad_now = rejected_rows(rows, own, source, self.stage, positions)
        else:
            keep = pa.array(~failed)
            good = rows.filter(keep)
            good_positions = positions[~failed]
            bad_now = rejected_rows(
                rows.filter(pa.array(failed)),
                own.filter(pa.array(failed)),
                source,
                self.stage,
                positions[failed],
            )
        bad = pa.concat_tables([earlier.cast(REJECTED_SCHEMA), bad_now]) if earlier.num_rows else bad_now
        reconcile(n + earlier.num_rows, good, bad, f"{self._gx.name} gate ({source or 'batch'})")
        stats.update(
            source=source,
            suite=self._gx.name,
            rows=n + earlier.num_rows,
            good=good.num_rows,
            bad=bad.num_rows,
            failure_rate=round(rate, 6),
            max_failure_rate=limit,
            refused=refused,
            failures=dict(sorted(counts.items())),
        )
        return GateResult(
            good=good, bad=bad, failure_rate=rate, refused=refused, stats=stats, positions=good_positions
        )


class EventGate(_Gate):
    """The event suite, built once; runs on one batch (a file or a micro-batch) at a time.

    ``docs=True`` keeps every result in the file context under ``settings.paths.gx`` for Data Docs;
    a stream should leave it off (one stored result per micro-batch adds up).

    ``history=True``: the batch is an imported dataset's own past (`aisle data import`), so events before
    ``AISLE_SHOP_OPENED_AT`` are not rejected for it; the stream and `ingest batch` keep the check.

    ``known_items``: the catalog's item ids; None means no catalog is known and the check is skipped.
    ``already_rejected``: rows of the same batch rejected upstream (the reader); they count towards the
    failure rate, so a file that is mostly unreadable is refused, not trickled through.
    """

    contract = EVENTS

    def __init__(self, settings: Settings, *, docs: bool = False, history: bool = False) -> None:
        super().__init__(settings, GxSuite(EVENTS_SUITE, event_expectations(), record=docs))
        # the same suite's expectation objects, evaluated in Arrow for small batches (see arrow_gate)
        self._arrow = ArrowSuite(EVENTS_SUITE, self._gx.suite.expectations)
        opened = _parse_instant(settings.shop_opened_at, "AISLE_SHOP_OPENED_AT")
        # The shop-opening check guards the shop's own feeds (a producer with a broken clock or unit);
        # an imported dataset's past (ratings from the 1990s) is history, not a broken clock.
        self._ts_min = NO_OPENING if history else opened

    def check(
        self,
        rows: pa.Table,
        *,
        known_items: set[str] | Sequence[str] | pa.Array | None = None,
        source: str = "",
        now: datetime | None = None,
        already_rejected: int = 0,
        typed: bool = False,
    ) -> GateResult:
        """Parse events as read, then judge them; parse rejects are in ``bad`` with stage "parse".

        ``typed=True``: the rows are already typed (:func:`ingestion.parsing.parse_events`), judge only.
        """
        judge = self._validate if typed else self._check
        return judge(rows, source, already_rejected, {"known_items": known_items, "now": now})

    def validate(self, events: pa.Table, **options: Any) -> GateResult:
        """:meth:`check` on events that are already typed."""
        return self.check(events, typed=True, **options)

    def check_many(
        self,
        batches: Sequence[tuple[pa.Table, str, int]],
        *,
        known_items: set[str] | Sequence[str] | pa.Array | None = None,
        now: datetime | None = None,
    ) -> list[GateResult]:
        """:meth:`check` for several batches ``(rows, source, already_rejected)`` in one GE run."""
        return self._check_many(batches, {"known_items": known_items, "now": now})

    def _failures(
        self, rows: pa.Table, source: str, stats: dict[str, Any], context: dict[str, Any]
    ) -> list[tuple[str, np.ndarray]]:
        known_items = context["known_items"]
        frame_table = rows.select(list(EVENT_FRAME_COLUMNS))
        in_catalog = (
            pc.is_in(rows["item_id"], value_set=_value_set(known_items))
            if known_items is not None
            else pa.nulls(rows.num_rows, pa.bool_())
        )
        frame_table = frame_table.append_column("item_in_catalog", in_catalog)
        now = context["now"] or datetime.now(UTC)
        parameters = {"ts_min": self._ts_min, "ts_max": now + FUTURE_SKEW}
        t0 = time.perf_counter()
        if rows.num_rows <= self.settings.arrow_gate_max_rows and not self._gx.record:
            failures = self._arrow.run(frame_table, parameters)
            stats["executor"] = "arrow"
            stats["seconds"]["suite"] = round(time.perf_counter() - t0, 4)
            return failures
        frame = to_frame(frame_table)
        t1 = time.perf_counter()
        failures, _ = self._gx.run(frame, parameters, source)
        stats["executor"] = "great_expectations"
        stats["seconds"].update(to_pandas=round(t1 - t0, 4), suite=round(time.perf_counter() - t1, 4))
        return failures


class CatalogGate(_Gate):
    """The catalog suite, built once."""

    contract = CATALOG

    def __init__(self, settings: Settings, *, docs: bool = False) -> None:
        super().__init__(settings, GxSuite(CATALOG_SUITE, catalog_expectations(), record=docs))

    def check(self, raw: pa.Table, *, source: str = "") -> GateResult:
        """Parse catalog rows as read, then judge them; parse rejects are in ``bad`` with stage "parse"."""
        return self._check(raw, source, 0, {})

    def validate(self, catalog: pa.Table, *, source: str = "") -> GateResult:
        """Judge catalog rows that are already typed (output of :func:`ingestion.parsing.parse_catalog`)."""
        return self._validate(catalog, source, 0, {})

    def _failures(
        self, rows: pa.Table, source: str, stats: dict[str, Any], context: dict[str, Any]
    ) -> list[tuple[str, np.ndarray]]:
        failures, _ = self._gx.run(to_frame(rows.select(list(CATALOG_FRAME_COLUMNS))), {}, source)
        return failures


def conform(table: pa.Table, schema: pa.Schema, required: Sequence[str], what: str) -> pa.Table:
    """Select and order the contract columns; optional ones may be absent. Types must already match."""
    missing = [n for n in required if n not in table.column_names]
    if missing:
        raise BadInput(f"{what} lacks required column(s) {', '.join(missing)}; run the parse stage first")
    arrays = []
    for f in schema:
        if f.name not in table.column_names:
            arrays.append(pa.nulls(table.num_rows, f.type))
            continue
        col = table.column(f.name)
        if col.type != f.type:
            try:
                col = col.cast(f.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise BadInput(
                    f"{what} column {f.name} is {col.type}, not {f.type}; run the parse stage first ({exc})"
                ) from None
        arrays.append(col)
    return pa.Table.from_arrays(arrays, schema=schema)


def _value_set(items: set[str] | Sequence[str] | pa.Array) -> pa.Array:
    if isinstance(items, pa.Array | pa.ChunkedArray):
        return pc.cast(contiguous(items), pa.string())
    return pa.array(list(items), pa.string())


def _parse_instant(text: str, what: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise BadInput(
            f"{what} must be an ISO-8601 instant like 2020-01-01T00:00:00Z (got {text!r})"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# ----------------------------------------------------------------------------- module-level API


@lru_cache(maxsize=8)
def _cached_event_gate(settings: Settings, docs: bool) -> EventGate:
    return EventGate(settings, docs=docs)


@lru_cache(maxsize=8)
def _cached_catalog_gate(settings: Settings, docs: bool) -> CatalogGate:
    return CatalogGate(settings, docs=docs)


def validate_events(
    events: pa.Table,
    settings: Settings,
    *,
    known_items: set[str] | Sequence[str] | pa.Array | None = None,
    source: str = "",
    docs: bool = False,
    now: datetime | None = None,
    already_rejected: int = 0,
) -> GateResult:
    """Run the event suite on typed events through a gate cached per settings (see :class:`EventGate`)."""
    return _cached_event_gate(settings, docs).validate(
        events, known_items=known_items, source=source, now=now, already_rejected=already_rejected
    )


def validate_catalog(
    catalog: pa.Table, settings: Settings, source: str = "", *, docs: bool = False
) -> GateResult:
    """Parse and judge a catalog table; parse rejects are in ``bad`` with stage "parse"."""
    return _cached_catalog_gate(settings, docs).check(catalog, source=source)


def build_data_docs(settings: Settings, *gates: _Gate) -> Path:
    """Publish the results the given gates (or the cached ``docs=True`` gates) recorded, and render GE
    Data Docs; returns ``index.html``. Results beyond ``AISLE_GX_RESULTS_KEEP`` are deleted, oldest first."""
    chosen = gates or (_cached_event_gate(settings, True), _cached_catalog_gate(settings, True))
    return publish(settings.paths.gx, [g._gx for g in chosen], keep=settings.gx_results_keep)
