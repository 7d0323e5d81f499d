"""Data quality of the lake: the share of arriving rows the gate refused, per source and per reason.

Read from the ingest log (one line per gated batch: rows read, rows refused and why). This is on the
ingestion clock — when rows arrived, not the events' own time — because a quarantine rate describes
the feed: a replayed history arrives today, whatever days its events are stamped with.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ingestion.ingest_log import read_log


def quarantine_rates(lines: Iterable[Mapping[str, Any]], start: datetime, end: datetime) -> dict[str, Any]:
    """Rows read and refused in ``[start, end)`` per channel, and each reason's share of rows read."""
    read: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    batches = 0
    for line in lines:
        at = datetime.fromisoformat(str(line["at"]))
        if not start <= at < end:
            continue
        batches += 1
        channel = str(line.get("channel", "batch"))
        read[channel] += int(line.get("read", 0))
        refused[channel] += int(line.get("refused", 0))
        for reason, n in dict(line.get("reasons", {})).items():
            reasons[str(reason)] += int(n)
    total = sum(read.values())
    by_channel = {
        c: {
            "read": read[c],
            "refused": refused[c],
            "rate": round(refused[c] / read[c], 6) if read[c] else 0.0,
        }
        for c in sorted(read)
    }
    return {
        "batches": batches,
        "read": total,
        "refused": sum(refused.values()),
        "rate": round(sum(refused.values()) / total, 6) if total else None,
        "by_channel": by_channel,
        "by_reason": {r: round(n / total, 6) for r, n in reasons.most_common()} if total else {},
        "refused_by_reason": dict(reasons.most_common()),
    }


def lake_quality(log_root: Path, start: datetime, end: datetime) -> dict[str, Any]:
    """:func:`quarantine_rates` over the ingest log's days that overlap the window."""
    lines = read_log(log_root, start.date(), (end + timedelta(days=1)).date())
    return quarantine_rates(lines, start, end)


def logged_values(rates: Mapping[str, Any]) -> dict[tuple[str, str], float]:
    """What the lake project's snapshot charts: the rate overall, per channel and per reason."""
    values: dict[tuple[str, str], float] = {}
    if not rates.get("read"):
        return values
    values[("quarantine_rate", "all")] = float(rates["rate"])
    values[("rows_read", "all")] = float(rates["read"])
    for channel, c in rates["by_channel"].items():
        values[("quarantine_rate", f"channel={channel}")] = float(c["rate"])
        values[("rows_read", f"channel={channel}")] = float(c["read"])
    for reason, share in rates["by_reason"].items():
        values[("quarantine_rate", f"reason={reason}")] = float(share)
    return values
