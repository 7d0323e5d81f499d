"""Shared bits for benchmarks: one JSON line per figure, with machine facts for the record."""

from __future__ import annotations

import json
import os
import platform
import sys
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
