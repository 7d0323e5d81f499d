"""The live path: consume the events topic into the lake in micro-batches.

Delivery is at-least-once with idempotent writes: a micro-batch is written to the lake and the quarantine
(fsynced, deduplicated) *before* its offsets are committed. A crash between the two replays the batch
on restart, and the lake's dedup index recognises every replayed event, so nothing is lost or doubled.
Anything a message can hold becomes a row or a quarantined message with its exact bytes, so no message
can stop the stream; its offset is committed like any other.

Clocks start when the group gives this consumer its partitions (joining takes about half the session
timeout, longer on a busy machine): ``max_seconds`` and ``idle_seconds`` count from then, and a bounded
run that never got a partition fails and says so. "Idle" also needs the ledger's word that the consumer
has caught up with what was produced (:mod:`ingestion.ledger`), so a slow first fetch is not mistaken for
an empty topic. A commit the group refuses during a rebalance is retried once the partitions are
assigned again, instead of replaying the batch.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from types import FrameType
from typing import Any

import pyarrow as pa

from aisle.core.errors import AisleError
from aisle.core.settings import Settings
from ingestion.consumer import GroupConsumer
from ingestion.outcomes import batch_problem, reasons_text, top_reasons
from ingestion.pipeline import IngestCounts, Ingester
from ingestion.producing import events_to_json_lines, produce_messages, stream_events, stream_file
from ingestion.readers import read_messages
from ingestion.stage_clock import StageClock

log = logging.getLogger("aisle.stream")

BatchHook = Callable[[pa.Table], None]

__all__ = [
    "StopFlag",
    "consume_stream",
    "events_to_json_lines",
    "produce_messages",
    "stream_events",
    "stream_file",
]


class StopFlag:
    """Set by SIGTERM/SIGINT or by the caller; the loop finishes its batch, commits, and returns."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def install_signal_handlers(self) -> None:
        def handler(signum: int, _frame: FrameType | None) -> None:
            log.warning("received signal %s; finishing the current micro-batch", signum)
            self.event.set()

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, handler)
            signal.signal(signal.SIGINT, handler)


def _check_bounds(**bounds: float | None) -> None:
    from aisle.core.errors import BadInput

    for name, value in bounds.items():
        if value is not None and value <= 0:
            raise BadInput(f"--{name.replace('_', '-')} must be positive (got {value})")


def consume_stream(
    settings: Settings,
    *,
    max_seconds: float | None = None,
    max_events: int | None = None,
    idle_exit_seconds: float | None = None,
    stop: StopFlag | None = None,
    on_batch: BatchHook | None = None,
    progress: Callable[[IngestCounts], None] | None = None,
    latency_budget_ms: float | None = None,
) -> dict[str, Any]:
    """Consume the events topic into the lake until a bound is hit (or forever when none is given).

    ``latency_budget_ms`` (default ``AISLE_STREAM_LATENCY_BUDGET_MS``): the longest a batch's first event
    waits for company before the batch closes."""
    _check_bounds(
        max_seconds=max_seconds,
        max_events=max_events,
        idle_seconds=idle_exit_seconds,
        latency_budget_ms=latency_budget_ms,
    )
    bounded = any(b is not None for b in (max_seconds, max_events, idle_exit_seconds))
    ingester = Ingester(settings)
    stop = stop or StopFlag()
    consumer = GroupConsumer(settings, stop)
    totals = IngestCounts()
    batches = passed = 0
    reasons: Counter[str] = Counter()
    source = f"kafka:{settings.events_topic}"
    wait_budget = max(max_seconds or 0.0, settings.stream_assignment_timeout_seconds)
    budget_ms = latency_budget_ms if latency_budget_ms is not None else settings.stream_latency_budget_ms
    budget_s = None if budget_ms is None else budget_ms / 1000
    clock = StageClock()
    hook = BatchHookRunner(on_batch, clock, overlap=settings.stream_overlap_push)
    try:
        assigned = consumer.wait_for_assignment(wait_budget if bounded else None)
        started = last_data = time.perf_counter()
        while assigned and not stop.event.is_set():
            now = time.perf_counter()
            if max_seconds is not None and now - started >= max_seconds:
                break
            if max_events is not None and totals.read >= max_events:
                break
            if idle_exit_seconds is not None and now - last_data >= idle_exit_seconds:
                if consumer.caught_up():
                    break
                last_data = now  # the ledger says more is coming: keep reading until max_seconds
            cap = settings.micro_batch_max_events
            if max_events is not None:
                cap = min(cap, max_events - totals.read)
            messages = consumer.poll_batch(cap, settings.micro_batch_max_seconds, budget_s)
            if not messages:
                continue
            closed = last_data = time.perf_counter()
            times = {"fetch": consumer.fetch_s, "wait": closed - (consumer.first_at or closed)}
            result = read_messages([m.value or b"" for m in messages], source, settings.max_line_bytes)
            if result.read != len(messages):
                raise AisleError(
                    f"decoded {result.read} rows from {len(messages)} messages; refusing to commit"
                )
            times["read"] = time.perf_counter() - closed
            outcome = ingester.ingest_events(result)
            times.update(outcome.seconds)
            if on_batch is not None:  # after the lake write: online features only show durable events
                hook.submit(outcome.good, times)
            t0 = time.perf_counter()
            consumer.commit(messages)  # only after the rows are durably in the lake / quarantine
            times["commit"] = time.perf_counter() - t0
            if on_batch is None:
                clock.record(times)
            totals += outcome.counts
            passed += outcome.good.num_rows
            reasons.update(outcome.reasons)
            batches += 1
            if progress:
                progress(totals)
    finally:
        hook.close()
        consumer.close()
    totals.check("stream")
    seconds = consumer.seconds_assigned()
    problem = stream_problem(settings, totals, passed, reasons, consumer)
    return {
        "ok": problem is None,
        "problem": problem,
        **totals.as_dict(),
        "dead_letters": totals.quarantined,
        "top_reasons": top_reasons(reasons),
        "batches": batches,
        "topic": settings.events_topic,
        "group": settings.consumer_group,
        **consumer.summary(),
        "stage_ms": clock.summary(),
        "seconds": round(seconds, 3),
        "events_per_s": round(totals.read / seconds) if seconds > 0 else None,
    }


class BatchHookRunner:
    """Runs the ``on_batch`` hook (fold + push of stream features) after each batch's lake write, on one
    worker thread when ``overlap`` is on, so the push overlaps the offset commit and the next poll.
    Batches reach the hook in order; at most one waits while another is pushed, and a hook's exception
    is raised in the consumer at the next batch (or at the end). A batch's stage times are recorded once
    its hook has finished."""

    def __init__(self, hook: BatchHook | None, clock: StageClock, *, overlap: bool) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.hook = hook
        self.clock = clock
        self.pool = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="on-batch") if hook and overlap else None
        )
        self.pending: list[tuple[Any, dict[str, float]]] = []

    def submit(self, good: pa.Table, times: dict[str, float]) -> None:
        self._collect(keep=1 if self.pool is not None else 0)
        if self.pool is None:
            self._run(good, times)
            self.pending.append((None, times))
            return
        self.pending.append((self.pool.submit(self._run, good, times), times))

    def _collect(self, keep: int) -> None:
        """Wait for finished (and, beyond ``keep`` in flight, the oldest) hooks; record their times."""
        while self.pending and (
            len(self.pending) > keep or self.pending[0][0] is None or self.pending[0][0].done()
        ):
            future, times = self.pending.pop(0)
            if future is not None:
                future.result()
            self.clock.record(times)

    def _run(self, good: pa.Table, times: dict[str, float]) -> None:
        assert self.hook is not None
        t0 = time.perf_counter()
        self.hook(good)
        spent = getattr(self.hook, "seconds", None)
        if isinstance(spent, dict) and spent:
            times.update(spent)
        else:
            times["push"] = time.perf_counter() - t0

    def close(self) -> None:
        try:
            self._collect(keep=0)
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True)


def stream_problem(
    settings: Settings, totals: IngestCounts, passed: int, reasons: Counter[str], consumer: GroupConsumer
) -> str | None:
    """A stream run fails when it never got a partition, lost events to a broker restart, refused a
    micro-batch, or read events of which none passed the gate. Reading nothing is fine for a consumer
    that is caught up."""
    what = f"stream from {settings.events_topic}"
    if consumer.assigned_at is None:
        return (
            f"{what}: group {settings.consumer_group} got no partition within "
            f"{consumer.waited_s:.0f} s, so nothing was read (broker {consumer.bootstrap}); a busy machine "
            "or a group still rebalancing can cause this: run again, or raise "
            "AISLE_STREAM_ASSIGNMENT_TIMEOUT_SECONDS"
        )
    if consumer.lost:
        return (
            f"{what}: the broker restarted and lost {consumer.lost:,} event(s) that group "
            f"{settings.consumer_group} had not consumed (the embedded broker keeps its log in memory); "
            "produce them again (the lake deduplicates by event_id)"
        )
    if totals.refused_batches:
        return (
            f"{what}: {totals.refused_batches} micro-batch(es) refused whole (more than "
            f"AISLE_MAX_FAILURE_RATE {settings.max_failure_rate:g} of their rows failed); top reasons: "
            f"{reasons_text(reasons)}; the rows are in quarantine under {settings.paths.quarantine}"
        )
    if totals.read:
        return batch_problem(
            what,
            read=totals.read,
            passed=passed,
            refused=False,
            failure_rate=1.0,
            reasons=reasons,
            settings=settings,
        )
    return None
