"""Exposures: what the service showed, from the Kafka ``exposures`` topic into the lake.

The service logs one JSON record per ``/recommend`` response (request id, shopper, the items in the
order shown with their scores, model version, variant, latency, degraded). Monitoring and experiment
analysis join them with the outcome events, so they are kept like events: append-only Parquet parts
under ``lake/exposures/exposure_date=YYYY-MM-DD/``, deduplicated by ``request_id`` (a replayed message
is stored once), and a record that cannot be read goes to ``quarantine/exposures`` with its reason.

The record shape (``aisle.core.schemas.EXPOSURE_SCHEMA``) accepts ``items`` either as item ids with a
parallel ``scores`` list or as the response's own ``[{"item_id": ..., "score": ...}]`` objects.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from aisle.core.errors import BadInput, ServiceUnavailable
from aisle.core.schemas import DEFAULT_VARIANT, EXPOSURE_SCHEMA, MAX_ID_LENGTH
from aisle.core.settings import Settings, ensure_home
from ingestion.lake import Quarantine, WriteCounts, _days, _PartStore
from ingestion.rejects import rejected_table

#: Consumer group of the exposures collector (apart from the events ingester's group).
EXPOSURES_GROUP = "aisle-exposures"


class ExposureLog(_PartStore):
    """``lake/exposures``: one row per response, partitioned by the day it was served."""

    key_column = "request_id"
    partition = "exposure_date"
    schema = EXPOSURE_SCHEMA

    def _partition_days(self, table: pa.Table) -> np.ndarray:
        return _days(table["ts"])

    def write(self, table: pa.Table, content: np.ndarray | None = None) -> WriteCounts:
        return super().write(table.select(EXPOSURE_SCHEMA.names).cast(EXPOSURE_SCHEMA).sort_by("ts"), content)


def _text(record: Mapping[str, Any], name: str, required: bool) -> str | None:
    value = record.get(name)
    if value is None or value == "":
        if required:
            raise ValueError(f"{name} is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"{name} is not a string")
    text = str(value)
    if len(text) > MAX_ID_LENGTH:
        raise ValueError(f"{name} over {MAX_ID_LENGTH} chars")
    return text


def _timestamp(value: Any) -> datetime:
    if isinstance(value, bool) or value is None:
        raise ValueError("ts is missing")
    if isinstance(value, int | float):
        seconds = float(value) / (1000.0 if value > 1e11 else 1.0)  # epoch seconds or milliseconds
        return datetime.fromtimestamp(seconds, UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"ts {value[:40]!r} is not an ISO-8601 time") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise ValueError("ts is not a time")


def _number(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} is not a finite number")
    return float(value)


def _items(record: Mapping[str, Any]) -> tuple[list[str], list[float] | None]:
    raw = record.get("items")
    if not isinstance(raw, list) or not raw:
        raise ValueError("items is missing or empty")
    if all(isinstance(i, Mapping) for i in raw):
        ids = [_text(i, "item_id", True) for i in raw]
        scores = [_number(i.get("score"), "score") for i in raw]
        clean_scores = None if any(s is None for s in scores) else [float(s) for s in scores]  # type: ignore[arg-type]
        return [str(i) for i in ids], clean_scores
    ids = [_text({"item_id": i}, "item_id", True) for i in raw]
    given = record.get("scores")
    if given is None:
        return [str(i) for i in ids], None
    if not isinstance(given, list) or len(given) != len(ids):
        raise ValueError("scores must be a list as long as items")
    return [str(i) for i in ids], [float(_number(s, "score") or 0.0) for s in given]


def parse_record(record: Any) -> dict[str, Any]:
    """One exposure record as a row of ``EXPOSURE_SCHEMA``; ValueError names what is wrong."""
    if not isinstance(record, Mapping):
        raise ValueError("not a JSON object")
    items, scores = _items(record)
    degraded = record.get("degraded", False)
    error = record.get("error", False)
    for name, flag in (("degraded", degraded), ("error", error)):
        if not isinstance(flag, bool):
            raise ValueError(f"{name} is not true/false")
    version = record.get("experiment_version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        raise ValueError("experiment_version is not a positive integer")
    return {
        "request_id": _text(record, "request_id", True),
        "ts": _timestamp(record.get("ts")),
        "user_id": _text(record, "user_id", True),
        "items": items,
        "scores": scores,
        "model_version": _text(record, "model_version", False),
        "variant": _text(record, "variant", False) or DEFAULT_VARIANT,
        "experiment": _text(record, "experiment", False),
        "latency_ms": _number(record.get("latency_ms"), "latency_ms"),
        "degraded": degraded,
        "experiment_version": version,
        "error": error,
        "device": _text(record, "device", False),
        "country": _text(record, "country", False),
    }


def parse_messages(
    values: Iterable[bytes | str | Mapping[str, Any]], source: str
) -> tuple[pa.Table, pa.Table]:
    """Good rows as an exposure table, bad ones as quarantine rows (original text + reason)."""
    rows: list[dict[str, Any]] = []
    bad_rows: list[str] = []
    bad_raw: list[bytes | None] = []
    reasons: list[str] = []
    for value in values:
        raw = value if isinstance(value, bytes) else value.encode() if isinstance(value, str) else None
        text = value if isinstance(value, str) else None
        try:
            if isinstance(value, Mapping):
                record: Any = value
                text = json.dumps(value, default=str)
            else:
                text = value.decode("utf-8") if isinstance(value, bytes) else value
                record = json.loads(text)
            rows.append(parse_record(record))
            continue
        except UnicodeDecodeError:
            text, reason = repr(value)[:2000], "not UTF-8"
        except json.JSONDecodeError:
            reason = "not valid JSON"
        except ValueError as exc:
            reason = str(exc)
        bad_rows.append(str(text))
        bad_raw.append(raw)
        reasons.append(reason)
    table = pa.Table.from_pylist(rows, schema=EXPOSURE_SCHEMA) if rows else EXPOSURE_SCHEMA.empty_table()
    return table, rejected_table(bad_rows, reasons, source, "parse", raw=bad_raw)


def store(
    settings: Settings, values: Iterable[bytes | str | Mapping[str, Any]], source: str
) -> dict[str, int]:
    """Parse exposure records and write them (good ones to the lake, bad ones to quarantine)."""
    ensure_home(settings)
    values = list(values)
    good, bad = parse_messages(values, source)
    written = ExposureLog(settings.paths.exposures).write(good) if good.num_rows else None
    quarantined = Quarantine(settings.paths.quarantine, "exposures").write(bad)
    counts = {
        "read": len(values),
        "stored": written.written if written else 0,
        "duplicates": (written.duplicates if written else 0) + quarantined.duplicates,
        "quarantined": quarantined.written,
    }
    if counts["stored"] + counts["duplicates"] + counts["quarantined"] != counts["read"]:
        raise AssertionError(f"exposure counts do not reconcile: {counts}")
    return counts


def read_exposures(root: Path, start: datetime, end: datetime) -> pa.Table:
    """Exposures served in ``[start, end)``."""
    return ExposureLog(root).read_range("ts", start, end)


def collect(
    settings: Settings,
    *,
    max_seconds: float = 60.0,
    idle_seconds: float = 5.0,
    batch: int = 5_000,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Consume the exposures topic into the lake until it is idle for ``idle_seconds`` after the group
    assigned partitions (a first join takes seconds on Tansu), or ``max_seconds`` pass.

    Offsets are committed only after the rows are in the lake, so a crash replays (and the
    ``request_id`` key deduplicates) rather than losing exposures.
    """
    from kafka.errors import KafkaError

    from aisle.core.endpoints import kafka_bootstrap
    from ingestion.kafka_io import ensure_topic, new_consumer

    if max_seconds <= 0 or idle_seconds <= 0:
        raise BadInput("--max-seconds and --idle-seconds must be positive")
    bootstrap = kafka_bootstrap(settings)
    ensure_topic(bootstrap, settings.exposures_topic)
    consumer = new_consumer(bootstrap, settings.exposures_topic, EXPOSURES_GROUP, batch)
    source = f"kafka:{settings.exposures_topic}"
    totals = {"read": 0, "stored": 0, "duplicates": 0, "quarantined": 0}
    started = time.perf_counter()
    assigned_at: float | None = None  # the idle clock starts when the group gave us partitions
    last_data = started
    try:
        while True:
            now = time.perf_counter()
            if now - started >= max_seconds:
                break
            if assigned_at is not None and now - last_data >= idle_seconds:
                break
            polled = consumer.poll(timeout_ms=500, max_records=batch)
            if assigned_at is None and consumer.assignment():
                assigned_at = last_data = time.perf_counter()
            messages = [m.value or b"" for records in polled.values() for m in records]
            if not messages:
                continue
            last_data = time.perf_counter()
            for key, value in store(settings, messages, source).items():
                totals[key] += value
            with contextlib.suppress(KafkaError):  # else replayed next time, deduplicated by request_id
                consumer.commit()
            if progress:
                progress(len(messages))
    finally:
        consumer.close(autocommit=False)
    if assigned_at is None:
        raise ServiceUnavailable(
            f"the broker at {bootstrap} assigned no partition of {settings.exposures_topic!r} within "
            f"{max_seconds:.0f} s; nothing was read (raise --max-seconds or check `aisle services status`)"
        )
    return {**totals, "topic": settings.exposures_topic, "seconds": round(time.perf_counter() - started, 3)}
