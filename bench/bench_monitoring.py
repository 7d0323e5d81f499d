"""Monitoring: event-stream report time for 100k and 1M rows, the quality join's time, snapshot bytes per day.

* Report: N rows of events in the current window and N in the reference (1 day each), written to a real
  lake; timed end to end (lake read + derived columns, noise floors, Evidently's drift and data-quality
  report, the snapshot into the workspace), once with the default cap (``AISLE_MONITOR_MAX_ROWS``) and
  once uncapped. Baseline in the same process: reading the same two windows from the lake.
* Quality join: E exposures of 10 items and their outcome events → attribution → per-exposure metrics →
  per-series summary. Baseline: one plain pandas merge of the shown items with the outcomes.
* Snapshot size: a demo-sized shop (3,000 shoppers, 600 items, 21 days) reported daily for 7 days with
  exposures; bytes the workspace grows per day, per concern.

Usage: ``python bench/bench_monitoring.py [--sizes 100000,1000000] [--exposures 100000]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).parent))
from _common import report

from aisle.core.settings import load_settings
from ingestion.exposures import ExposureLog, parse_messages
from ingestion.lake import EventLake
from ingestion.synthetic.shop import ShopConfig, generate_shop

DAY0 = datetime(2026, 1, 5, tzinfo=UTC)


def _tiled_days(rows: int, shop: object) -> pa.Table:
    """``rows`` events on each of two days, tiled from a generated shop's events (new ids and times)."""
    base = shop.events  # type: ignore[attr-defined]
    reps = -(-rows // base.num_rows)
    parts = []
    for day in range(2):
        idx = np.tile(np.arange(base.num_rows), reps)[:rows]
        t = base.take(pa.array(idx))
        offsets = np.sort(np.random.default_rng(day).integers(0, 86_400_000_000, rows))
        ts = pa.array(
            int(DAY0.timestamp() * 1e6) + day * 86_400_000_000 + offsets, pa.timestamp("us", tz="UTC")
        )
        t = t.set_column(t.schema.get_field_index("ts"), "ts", ts)
        ids = pa.array([f"b{day}-{i}" for i in range(rows)])
        t = t.set_column(t.schema.get_field_index("event_id"), "event_id", ids)
        parts.append(t)
    return pa.concat_tables(parts)


def bench_report(sizes: list[int]) -> None:
    from monitoring.report import Reporter
    from monitoring.windows import make_windows

    shop = generate_shop(ShopConfig(users=20_000, items=1_000, days=14, seed=1))
    for rows in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            for cap in (200_000, rows):
                settings = load_settings(home=Path(tmp) / f"cap{cap}", monitor_max_rows=cap)
                lake = EventLake(settings.paths.lake)
                lake.write(_tiled_days(rows, shop))
                lake.upsert_catalog(shop.catalog)
                w = make_windows(DAY0 + timedelta(days=2), "1d", "1d")
                started = time.perf_counter()
                lake.read_range("ts", w.reference_start, w.as_of)
                read_s = time.perf_counter() - started
                reporter = Reporter(settings)  # imports Evidently once (not timed below)
                started = time.perf_counter()
                summary = reporter.events(w)
                total_s = time.perf_counter() - started
                snap = next(settings.paths.evidently_workspace.rglob(f"{summary['snapshot']}.json"))
                report(
                    "monitor_report_events",
                    rows_per_window=rows,
                    sampled_to=min(cap, rows),
                    seconds=round(total_s, 2),
                    lake_read_baseline_s=round(read_s, 2),
                    ratio_to_read=round(total_s / read_s, 1),
                    snapshot_kb=round(snap.stat().st_size / 1024, 1),
                    peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                    drift_share=summary["drift_share"],
                )
                if cap >= rows:
                    break


def bench_quality_join(n_exposures: int) -> None:
    from monitoring import quality
    from monitoring.attribution import attribute

    rng = np.random.default_rng(0)
    items = [f"i{i}" for i in range(5_000)]
    users = rng.integers(0, n_exposures // 2, n_exposures)
    at = pd.Timestamp(DAY0).value // 1000 + rng.integers(0, 86_400_000_000, n_exposures)
    records = [
        {
            "request_id": f"r{n}",
            "ts": int(at[n] // 1000),
            "user_id": f"u{users[n]}",
            "items": [items[j] for j in rng.integers(0, len(items), 10)],
            "model_version": str(1 + n % 2),
            "variant": "control" if n % 3 else "treatment",
            "latency_ms": 5.0,
        }
        for n in range(n_exposures)
    ]
    exposures, _ = parse_messages([json.dumps(r) for r in records], "bench")
    shown = pd.DataFrame(
        {
            "user_id": np.repeat([r["user_id"] for r in records], 10),
            "item_id": [i for r in records for i in r["items"]],
        }
    )
    pick = rng.random(len(shown)) < 0.05
    outcomes = shown.loc[pick].assign(
        event_type=rng.choice(["view", "add_to_cart", "purchase"], pick.sum(), p=[0.8, 0.15, 0.05]),
        ts=pd.to_datetime(np.repeat(at, 10)[pick] + 600_000_000, unit="us", utc=True),
        request_id=np.where(
            rng.random(pick.sum()) < 0.5, np.repeat([r["request_id"] for r in records], 10)[pick], None
        ),
    )
    started = time.perf_counter()
    joined = attribute(exposures, outcomes, timedelta(hours=24))
    join_s = time.perf_counter() - started
    started = time.perf_counter()
    per = quality.per_exposure(joined.positions, 10, {}, {}, 1e-6, {})
    series = quality.summarize(per, items)
    metrics_s = time.perf_counter() - started
    started = time.perf_counter()
    shown.merge(outcomes, on=["user_id", "item_id"], how="left")
    base_s = time.perf_counter() - started
    report(
        "monitor_quality_join",
        exposures=n_exposures,
        shown_items=len(joined.positions),
        outcomes=len(outcomes),
        attribution_s=round(join_s, 2),
        per_exposure_metrics_s=round(metrics_s, 2),
        merge_baseline_s=round(base_s, 2),
        ratio_to_merge=round(join_s / base_s, 1),
        hit_rate=round(series["all"]["hit_rate"], 4),
    )


def bench_snapshot_size(days: int = 7) -> None:
    from aisle.app.jobs import monitoring as jobs
    from aisle.app.jobs import shop as shop_jobs
    from ingestion.batch import ingest_batch
    from ingestion.exposures import store

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(home=Path(tmp) / "aisle", monitor_retrain="off")
        shop_jobs.generate(settings, {"users": 3000, "items": 600, "days": 21, "seed": 7})
        ingest_batch(settings, [settings.paths.raw / "shop"])
        rng = np.random.default_rng(0)
        items = [f"i{i:05d}" for i in range(600)]
        end = DAY0 + timedelta(days=21)
        records = []
        for day in range(days + 7):
            for n in range(2000):  # 2,000 responses a day
                when = end - timedelta(days=day, seconds=int(rng.integers(1, 86_400)))
                records.append(
                    {
                        "request_id": f"r{day}-{n}",
                        "ts": when.isoformat(),
                        "user_id": f"u{int(rng.integers(0, 3000)):05d}",
                        "items": [
                            {"item_id": i, "score": float(s)}
                            for i, s in zip(
                                rng.choice(items, 10, replace=False),
                                np.sort(rng.random(10))[::-1],
                                strict=True,
                            )
                        ],
                        "model_version": "1",
                        "latency_ms": float(rng.gamma(2, 3)),
                    }
                )
        store(settings, [json.dumps(r) for r in records], "bench")
        started = time.perf_counter()
        jobs.report(settings, {"backfill": days, "retrain": False})
        seconds = time.perf_counter() - started
        root = settings.paths.evidently_workspace
        from monitoring.workspace import CONCERNS

        names = {json.loads(p.read_text()).get("name"): p.parent for p in root.glob("*/metadata.json")}
        per_concern = {}
        for key, concern in CONCERNS.items():
            folder = names.get(concern.name)
            snaps = list(folder.glob("snapshots/*.json")) if folder else []
            per_concern[key] = {
                "snapshots": len(snaps),
                "kb_per_day": round(sum(p.stat().st_size for p in snaps) / 1024 / days, 1),
            }
        total = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        report(
            "monitor_snapshot_size",
            days=days,
            responses_per_day=2000,
            workspace_kb_per_day=round(total / 1024 / days, 1),
            per_concern=per_concern,
            backfill_seconds=round(seconds, 1),
        )
    _ = ExposureLog  # the store the exposures above went through


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--exposures", type=int, default=100_000)
    parser.add_argument("--only", default="report,quality,snapshots")
    args = parser.parse_args()
    only = set(args.only.split(","))
    if "report" in only:
        bench_report([int(s) for s in args.sizes.split(",")])
    if "quality" in only:
        bench_quality_join(args.exposures)
    if "snapshots" in only:
        bench_snapshot_size()


if __name__ == "__main__":
    main()
