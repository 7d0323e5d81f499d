"""Per-file cost of `ingest batch` on many small files: 1,000 one-row JSON Lines files in one directory.

Issue #17 measured 0.56 s per file (563 s for 1,000) and 84 MB of Great Expectations results left behind.
Small files are now validated together (one GE run per chunk of files) in an in-memory context, and the
Data Docs keep at most ``AISLE_GX_RESULTS_KEEP`` results. Baseline in the same run: one file holding all
the rows, so the ratio is the price of splitting them into files.

    python bench/bench_small_files.py [--files 1000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import report

from aisle.core.settings import load_settings
from ingestion.synthetic.shop import ShopConfig, generate_shop

try:  # the code since issue #17
    from ingestion.batch import ingest_batch
    from ingestion.producing import events_to_json_lines
except ImportError:  # the code before it, for the "before" figure
    from ingestion.pipeline import ingest_batch  # type: ignore[no-redef,attr-defined]
    from ingestion.stream import events_to_json_lines  # type: ignore[no-redef]


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=1_000)
    n = parser.parse_args().files
    lines = events_to_json_lines(generate_shop(ShopConfig(users=2_000, items=200, days=10, seed=3)).events)[
        :n
    ]
    with tempfile.TemporaryDirectory() as tmp:
        drop, one = Path(tmp) / "drop", Path(tmp) / "one"
        drop.mkdir()
        one.mkdir()
        for k, line in enumerate(lines):
            (drop / f"event-{k:05d}.jsonl").write_bytes(line + b"\n")
        (one / "all.jsonl").write_bytes(b"\n".join(lines) + b"\n")

        warm = Path(tmp) / "warm"
        warm.mkdir()
        (warm / "w.jsonl").write_bytes(lines[0] + b"\n")
        ingest_batch(load_settings(home=Path(tmp) / "home-warm"), [warm])  # imports and first GE build
        settings = load_settings(home=Path(tmp) / "home-one")
        t0 = time.perf_counter()
        ingest_batch(settings, [one])
        single = time.perf_counter() - t0

        settings = load_settings(home=Path(tmp) / "home-many")
        t0 = time.perf_counter()
        summary = ingest_batch(settings, [drop])
        many = time.perf_counter() - t0
        report(
            "ingest_many_small_files",
            files=n,
            accepted=summary["accepted"],
            seconds=round(many, 2),
            per_file_ms=round(1000 * many / n, 1),
            one_file_seconds=round(single, 2),
            ratio_to_one_file=round(many / single, 1),
            gx_dir_mb=round(_size(settings.paths.gx) / 1e6, 1),
            load_average=round(os.getloadavg()[0], 2),
        )


if __name__ == "__main__":
    main()
