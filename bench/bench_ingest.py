"""Ingestion throughput.

Stream: events/s from Kafka through parse + Great Expectations gate + dedup into the lake, and in the
same run the raw kafka-python consume rate of the same topic (the ceiling). Both are steady-state rates,
measured from the first delivered data, so the consumer-group join (~3 s on Tansu) is excluded.
Batch: rows/s for a ~1M-event Parquet file, against a raw read + write of the same file.
Targets (issue #4): stream >= 20,000 events/s and >= 0.5 of raw; batch >= 200,000 rows/s.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).parent))
from _common import report

from aisle.app.services import embedded_services, kafka_bootstrap
from aisle.core.settings import load_settings
from ingestion.batch import ingest_batch
from ingestion.kafka_io import CONSUMER_TIMEOUTS
from ingestion.pipeline import IngestCounts, Ingester
from ingestion.stream import consume_stream, events_to_json_lines, produce_messages
from ingestion.synthetic.shop import ShopConfig, generate_shop, write_shop

STREAM_EVENTS = 200_000


def raw_consume_rate(bootstrap: str, topic: str, n: int) -> float:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id="bench-raw",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=5000,
        fetch_max_bytes=32 * 1024 * 1024,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        **CONSUMER_TIMEOUTS,
    )
    total, first_batch, first = 0, 0, None
    deadline = time.perf_counter() + 120
    while total < n and time.perf_counter() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            if first is None:  # the rate counts what arrives after the first delivery (join excluded)
                first, first_batch = time.perf_counter(), len(records)
            total += len(records)
    elapsed = time.perf_counter() - (first or time.perf_counter())
    consumer.close()
    if total < n:
        raise RuntimeError(f"raw consumer saw only {total} of {n} messages")
    return (total - first_batch) / elapsed if elapsed > 0 else 0.0


def main() -> None:
    stream_only = "--stream-only" in sys.argv[1:]  # python bench/bench_ingest.py [--stream-only]
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(home=Path(tmp) / "home")
        shop = generate_shop(ShopConfig(users=100_000, items=20_000, days=90, seed=42))
        if not stream_only:
            batch_figures(settings, shop, Path(tmp))
        stream_figures(shop, Path(tmp))
    report("ingest_peak_rss", peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def batch_figures(settings: Any, shop: Any, tmp: Path) -> None:
    paths = write_shop(shop, Path(tmp) / "shop")

    # ---- batch
    ingest_batch(settings, [Path(paths["catalog"])])
    t0 = time.perf_counter()
    batch = ingest_batch(settings, [Path(paths["events"])])
    t_batch = time.perf_counter() - t0
    t1 = time.perf_counter()
    pq.write_table(pq.read_table(paths["events"]), Path(tmp) / "copy.parquet")
    t_raw = time.perf_counter() - t1
    report(
        "ingest_batch",
        rows=batch["read"],
        accepted=batch["accepted"],
        seconds=round(t_batch, 2),
        rows_per_s=round(batch["read"] / t_batch),
        raw_read_write_s=round(t_raw, 2),
        ratio_vs_raw_copy=round(t_batch / t_raw, 1),
        target_rows_per_s=200_000,
    )


def stream_figures(shop: Any, tmp: Path) -> None:
    # ---- stream (fresh lake so every event is new work)
    stream_settings = load_settings(home=Path(tmp) / "stream-home")
    Ingester(stream_settings).ingest_catalog(shop.catalog, "catalog")
    with embedded_services(stream_settings, redis=False):
        lines = events_to_json_lines(shop.events.slice(0, STREAM_EVENTS))
        produced = produce_messages(stream_settings, lines)
        raw = raw_consume_rate(kafka_bootstrap(stream_settings), stream_settings.events_topic, STREAM_EVENTS)
        marks: list[tuple[float, int]] = []

        def on_batch(counts: IngestCounts) -> None:
            marks.append((time.perf_counter(), counts.read))

        summary: dict[str, Any] = consume_stream(stream_settings, max_events=STREAM_EVENTS, progress=on_batch)
    (t_first, n_first), (t_last, n_last) = marks[0], marks[-1]
    rate = (n_last - n_first) / (t_last - t_first)
    report(
        "ingest_stream",
        events=summary["read"],
        accepted=summary["accepted"],
        micro_batches=summary["batches"],
        produce_events_per_s=produced["events_per_s"],
        raw_consume_events_per_s=round(raw),
        ingest_events_per_s=round(rate),
        ratio_vs_raw=round(rate / raw, 2),
        wall_s_including_group_join=summary["seconds"],
        target_events_per_s=20_000,
        target_ratio=0.5,
        stage_ms=summary.get("stage_ms"),
    )


if __name__ == "__main__":
    main()
