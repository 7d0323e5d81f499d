"""Shared bits for benchmarks: one JSON line per figure, with machine facts for the record."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any


def report(name: str, **figures: Any) -> None:
    line = {
        "bench": name,
        **figures,
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


@contextlib.contextmanager
def busy_cores(on: bool = True) -> Iterator[None]:
    """A busy process (``while True: pass``) on every core for the length of the block, when ``on``."""
    count = (os.cpu_count() or 2) if on else 0
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def comparison_row(row: dict[str, Any]) -> dict[str, Any]:
    """One row of a run's comparison table (``comparison.csv``) as the figures a benchmark reports."""
    return {
        "model": row["model"],
        "segment": row["segment"],
        "users": row["users"],
        "ndcg_at_10": round(row["ndcg@10"], 4),
        "ndcg_at_10_ci": [round(row["ndcg@10_lo"], 4), round(row["ndcg@10_hi"], 4)],
        "recall_at_10": round(row["recall@10"], 4),
        "recall_at_10_ci": [round(row["recall@10_lo"], 4), round(row["recall@10_hi"], 4)],
        "coverage_at_10": round(row["coverage@10"], 4),
    }
