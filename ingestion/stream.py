"""The live path: replay events into Kafka, and consume them into the lake in micro-batches.

Delivery is at-least-once with idempotent writes: a micro-batch is written to the lake and the quarantine
(fsynced, deduplicated) *before* its offsets are committed. A crash between the two replays the batch
on restart, and the lake's dedup index recognises every replayed event, so nothing is lost or doubled.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from aisle.core.errors import AisleError, BadInput
from aisle.core.settings import Settings
from ingestion.kafka_io import broker_reachable, ensure_topic, new_consumer, new_producer
from ingestion.outcomes import batch_problem, reasons_text, top_reasons
from ingestion.pipeline import IngestCounts, Ingester
from ingestion.readers import read_file, read_messages

log = logging.getLogger("aisle.stream")

BatchHook = Callable[[pa.Table], None]


# ----------------------------------------------------------------------------- producing


def events_to_json_lines(events: pa.Table) -> list[bytes]:
    """Serialise events in the wire format: one JSON object per event, ISO-8601 UTC timestamps."""
    if "ts" in events.column_names and pa.types.is_timestamp(events.schema.field("ts").type):
        events = events.set_column(
            events.schema.get_field_index("ts"), "ts", pc.strftime(events["ts"], "%Y-%m-%dT%H:%M:%SZ")
        )
    text = events.to_pandas().to_json(orient="records", lines=True, date_format="iso")
    return [line.encode() for line in text.splitlines()]


def produce_messages(
    settings: Settings,
    messages: list[bytes],
    keys: list[bytes | None] | None = None,
    *,
    rate: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Send raw messages to the events topic, optionally paced at ``rate`` messages/s."""
    from aisle.core.endpoints import kafka_bootstrap

    if rate is not None and rate <= 0:
        raise BadInput(f"--rate must be positive (got {rate})")
    bootstrap = kafka_bootstrap(settings)
    ensure_topic(bootstrap, settings.events_topic)
    producer = new_producer(bootstrap)
    started = time.perf_counter()
    tick = 1000
    try:
        for lo in range(0, len(messages), tick):
            chunk = messages[lo : lo + tick]
            for j, value in enumerate(chunk):
                producer.send(settings.events_topic, value=value, key=keys[lo + j] if keys else None)
            if progress:
                progress(len(chunk))
            if rate:
                ahead = (lo + len(chunk)) / rate - (time.perf_counter() - started)
                if ahead > 0:
                    time.sleep(ahead)
        producer.flush(timeout=60)
    finally:
        producer.close(timeout=10)
    seconds = time.perf_counter() - started
    return {
        "produced": len(messages),
        "topic": settings.events_topic,
        "bootstrap": bootstrap,
        "seconds": round(seconds, 3),
        "events_per_s": round(len(messages) / seconds) if seconds > 0 else None,
    }


def stream_file(
    settings: Settings,
    path: Path,
    *,
    rate: float | None = None,
    limit: int | None = None,
    offset: int = 0,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """`aisle data stream`: replay an event file into Kafka in time order (keyed by user for ordering)."""
    result = read_file(path)
    events = result.rows
    if "ts" in events.column_names:
        events = events.sort_by("ts")
    events = events.slice(offset, limit if limit is not None else None)
    summary = stream_events(settings, events, rate=rate, progress=progress)
    return {**summary, "source": str(path), "offset": offset, "unreadable_rows": result.rejected.num_rows}


def stream_events(
    settings: Settings,
    events: pa.Table,
    *,
    rate: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Send events in the order given, keyed by user so one shopper's events stay in order."""
    keys = None
    if "user_id" in events.column_names:
        keys = [u.encode() if u else None for u in events["user_id"].to_pylist()]
    return produce_messages(settings, events_to_json_lines(events), keys, rate=rate, progress=progress)


# ----------------------------------------------------------------------------- consuming


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


def consume_stream(
    settings: Settings,
    *,
    max_seconds: float | None = None,
    max_events: int | None = None,
    idle_exit_seconds: float | None = None,
    stop: StopFlag | None = None,
    on_batch: BatchHook | None = None,
    progress: Callable[[IngestCounts], None] | None = None,
) -> dict[str, Any]:
    """Consume the events topic into the lake until a bound is hit (or forever when none is given)."""
    from kafka.errors import KafkaError  # CommitFailedError included

    from aisle.core.endpoints import kafka_bootstrap

    if max_seconds is not None and max_seconds <= 0:
        raise BadInput(f"--max-seconds must be positive (got {max_seconds})")
    if max_events is not None and max_events <= 0:
        raise BadInput(f"--max-events must be positive (got {max_events})")
    bootstrap = kafka_bootstrap(settings)
    ensure_topic(bootstrap, settings.events_topic)
    ingester = Ingester(settings)
    consumer = new_consumer(
        bootstrap, settings.events_topic, settings.consumer_group, settings.micro_batch_max_events
    )
    stop = stop or StopFlag()
    totals = IngestCounts()
    batches = passed = 0
    reasons: Counter[str] = Counter()
    started = last_data = time.perf_counter()
    outage = Outage(bootstrap)
    source = f"kafka:{settings.events_topic}"
    try:
        while not stop.event.is_set():
            now = time.perf_counter()
            if max_seconds is not None and now - started >= max_seconds:
                break
            if max_events is not None and totals.read >= max_events:
                break
            if idle_exit_seconds is not None and now - last_data >= idle_exit_seconds:
                break
            cap = settings.micro_batch_max_events
            if max_events is not None:
                cap = min(cap, max_events - totals.read)
            messages = _poll_batch(consumer, cap, settings.micro_batch_max_seconds, stop)
            if not messages:
                outage.after_empty_poll()
                continue
            outage.after_data()
            last_data = time.perf_counter()
            result = read_messages([m.value or b"" for m in messages], source)
            if result.read != len(messages):
                raise AisleError(
                    f"decoded {result.read} rows from {len(messages)} messages; refusing to commit"
                )
            outcome = ingester.ingest_events(result)
            counts = outcome.counts
            passed += outcome.good.num_rows
            reasons.update(outcome.reasons)
            try:
                consumer.commit()  # only after the rows are durably in the lake / quarantine
            except KafkaError as exc:
                log.warning("offset commit failed (%s); the batch will be replayed and deduplicated", exc)
            totals += counts
            batches += 1
            if on_batch is not None:
                on_batch(outcome.good)
            if progress:
                progress(totals)
    finally:
        consumer.close(autocommit=False)
    totals.check("stream")
    seconds = time.perf_counter() - started
    problem = stream_problem(settings, totals, passed, reasons)
    return {
        "ok": problem is None,
        "problem": problem,
        **totals.as_dict(),
        "top_reasons": top_reasons(reasons),
        "batches": batches,
        "topic": settings.events_topic,
        "group": settings.consumer_group,
        "seconds": round(seconds, 3),
        "events_per_s": round(totals.read / seconds) if seconds > 0 else None,
    }


def stream_problem(
    settings: Settings, totals: IngestCounts, passed: int, reasons: Counter[str]
) -> str | None:
    """A stream run fails when it refused a micro-batch, or read events of which none passed the gate.
    Reading nothing is fine for a consumer that is caught up."""
    what = f"stream from {settings.events_topic}"
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


CAUGHT_UP_MS = 25


def _poll_batch(consumer: Any, cap: int, max_seconds: float, stop: StopFlag) -> list[Any]:
    """Collect messages until the batch is full (``cap``), ``max_seconds`` pass, or the consumer has
    caught up with the topic (a short poll brings nothing new). The last rule keeps light traffic fresh:
    a lone event is not held back waiting for company; under load batches still fill to ``cap``."""
    out: list[Any] = []
    deadline = time.perf_counter() + max_seconds
    while len(out) < cap and not stop.event.is_set():
        remaining_ms = int((deadline - time.perf_counter()) * 1000)
        if remaining_ms <= 0:
            break
        wait_ms = min(remaining_ms, CAUGHT_UP_MS) if out else remaining_ms
        polled = consumer.poll(timeout_ms=wait_ms, max_records=cap - len(out))
        got = 0
        for records in polled.values():
            out.extend(records)
            got += len(records)
        if out and not got:
            break
    return out


class Outage:
    """Tracks a broker outage so it is reported once when it starts, every 30 s while it lasts, and once
    when it ends. An empty poll is normal when idle; only an unreachable broker counts."""

    REPEAT_S = 30.0

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.since: float | None = None
        self.logged_at = 0.0

    def after_empty_poll(self) -> None:
        if broker_reachable(self.bootstrap):
            return
        now = time.perf_counter()
        if self.since is None:
            self.since = self.logged_at = now
            log.warning(
                "broker %s unreachable; retrying every few seconds (nothing is lost: offsets are "
                "committed only after writes)",
                self.bootstrap,
            )
        elif now - self.logged_at >= self.REPEAT_S:
            self.logged_at = now
            log.warning(
                "broker %s still unreachable after %.0f s; retrying", self.bootstrap, now - self.since
            )
        time.sleep(0.5)

    def after_data(self) -> None:
        if self.since is not None:
            log.warning(
                "broker %s is back after %.1f s; consuming again",
                self.bootstrap,
                time.perf_counter() - self.since,
            )
            self.since = None
