"""Events into Kafka: replay a file or a table in time order, keyed by shopper, and account for every one.

Every send is checked: the broker's acknowledgement gives the offset, which goes into the ledger
(:mod:`ingestion.ledger`), and a send the broker never acknowledged (it stopped, restarted, or went away)
is counted. A run with unacknowledged events has failed, and its summary says how many.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from aisle.core.errors import BadInput
from aisle.core.settings import Settings
from ingestion.kafka_io import ensure_topic, new_producer
from ingestion.ledger import Ledger
from ingestion.readers import read_file

#: How long one send may block for room in the buffer or for metadata before the broker counts as gone.
MAX_BLOCK_MS = 10_000
#: How long the last sends may take to be acknowledged at the end of a run.
FLUSH_S = 15


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
    from kafka.errors import KafkaError

    from aisle.core.endpoints import kafka_bootstrap

    if rate is not None and rate <= 0:
        raise BadInput(f"--rate must be positive (got {rate})")
    bootstrap = kafka_bootstrap(settings)
    topic = settings.events_topic
    ensure_topic(bootstrap, topic)
    producer = new_producer(
        bootstrap, max_block_ms=MAX_BLOCK_MS, request_timeout_ms=10_000, delivery_timeout_ms=FLUSH_S * 1000
    )
    started = time.perf_counter()
    futures: list[Any] = []
    stopped: str | None = None
    tick = 1000
    try:
        for lo in range(0, len(messages), tick):
            chunk = messages[lo : lo + tick]
            try:
                for j, value in enumerate(chunk):
                    futures.append(producer.send(topic, value=value, key=keys[lo + j] if keys else None))
            except KafkaError as exc:  # the buffer stayed full or metadata never came: the broker is gone
                stopped = f"{type(exc).__name__}"
                break
            if progress:
                progress(len(chunk))
            if rate:
                ahead = (lo + len(chunk)) / rate - (time.perf_counter() - started)
                if ahead > 0:
                    time.sleep(ahead)
        producer.flush(timeout=FLUSH_S)
    except KafkaError as exc:
        stopped = stopped or type(exc).__name__
    finally:
        with contextlib.suppress(KafkaError):
            producer.close(timeout=5)
    acked, positions = _acknowledged(futures)
    if positions:
        Ledger(settings).record_produced(topic, positions)
    seconds = time.perf_counter() - started
    failed = len(messages) - acked
    problem = None
    if failed:
        problem = (
            f"the broker at {bootstrap} acknowledged {acked:,} of {len(messages):,} events; {failed:,} were "
            f"not delivered{f' ({stopped})' if stopped else ''}: check `aisle services status` and send "
            "them again (the lake deduplicates by event_id)"
        )
    return {
        "ok": not failed,
        "problem": problem,
        "produced": acked,
        "not_delivered": failed,
        "topic": topic,
        "bootstrap": bootstrap,
        "seconds": round(seconds, 3),
        "events_per_s": round(acked / seconds) if seconds > 0 else None,
    }


def _acknowledged(futures: list[Any]) -> tuple[int, dict[int, int]]:
    """How many sends the broker acknowledged, and per partition the offset after the last one."""
    acked = 0
    positions: dict[int, int] = {}
    for future in futures:
        if not future.is_done or future.failed():
            continue
        meta = future.value
        acked += 1
        positions[meta.partition] = max(positions.get(meta.partition, 0), meta.offset + 1)
    return acked, positions


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
    if offset < 0:
        raise BadInput(f"--offset must not be negative (got {offset})")
    if limit is not None and limit < 0:
        raise BadInput(f"--limit must not be negative (got {limit})")
    result = read_file(path, settings.max_line_bytes)
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
