"""Spark feature job time: a full build and a one-day incremental build over a ~1M-event lake
(`--big`: ~10M events; needs ~6 GB of RAM to generate and several minutes). The same-run baseline is a
plain Spark scan of the lake (read every event and count), so the ratio says what the features cost
beyond reading the data once."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import report

from aisle.core.settings import load_settings
from feature_repo.compute.build import build_features
from feature_repo.compute.session import spark_session
from ingestion.lake import EventLake
from ingestion.synthetic.shop import ShopConfig, generate_shop


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--big", action="store_true", help="~10M events instead of ~1M")
    args = parser.parse_args()
    config = (
        ShopConfig(users=1_000_000, items=100_000, days=90, seed=42)
        if args.big
        else ShopConfig(users=100_000, items=20_000, days=90, seed=42)
    )
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(home=Path(tmp), spark_driver_memory="10g" if args.big else "4g")
        shop = generate_shop(config)
        lake = EventLake(settings.paths.lake)
        lake.write(shop.events)
        lake.upsert_catalog(shop.catalog)
        events = shop.events.num_rows
        last_day = shop.events["ts"][-1].as_py().date()
        del shop

        spark = spark_session(settings)
        t = time.perf_counter()
        scanned = spark.read.parquet(str(lake.root)).count()
        scan_s = time.perf_counter() - t

        t = time.perf_counter()
        full = build_features(settings)
        full_s = time.perf_counter() - t
        t = time.perf_counter()
        build_features(settings, since=last_day)
        incr_s = time.perf_counter() - t
        t = time.perf_counter()
        build_features(settings, since=last_day - timedelta(days=6))
        week_s = time.perf_counter() - t
        assert scanned == events
        report(
            "spark_features",
            events=events,
            full_build_s=round(full_s, 1),
            incremental_1_day_s=round(incr_s, 1),
            incremental_7_days_s=round(week_s, 1),
            baseline_scan_s=round(scan_s, 1),
            full_over_scan=round(full_s / scan_s, 1),
            rows={name: t["rows"] for name, t in full["tables"].items()},
            spark_master=settings.spark_master,
            since_example=str(date.fromisoformat(str(last_day))),
        )


if __name__ == "__main__":
    main()
