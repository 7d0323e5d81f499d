"""Synthetic shop generation speed: events/s for a ~1M-event shop, against a same-process baseline of
simply materialising that many random rows (numpy + Arrow), so the ratio survives a noisy machine."""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).parent))
from _common import report

from ingestion.synthetic.shop import ShopConfig, generate_shop, write_shop


def main() -> None:
    config = ShopConfig(users=100_000, items=20_000, days=90, seed=42)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        shop = generate_shop(config)
        t_gen = time.perf_counter() - t0
        write_shop(shop, Path(tmp) / "shop")
        t_all = time.perf_counter() - t0
        n = shop.events.num_rows

        t1 = time.perf_counter()
        rng = np.random.default_rng(0)
        baseline = pa.table({name: rng.random(n) for name in shop.events.schema.names})
        pq.write_table(baseline, Path(tmp) / "baseline.parquet")
        t_base = time.perf_counter() - t1
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report(
        "generate_shop",
        events=n,
        generate_s=round(t_gen, 2),
        generate_and_write_s=round(t_all, 2),
        events_per_s=round(n / t_all),
        baseline_random_table_s=round(t_base, 2),
        ratio_vs_baseline=round(t_all / t_base, 2),
        peak_rss_mb=round(peak_mb),
    )


if __name__ == "__main__":
    main()
