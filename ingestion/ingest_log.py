"""The ingest log: one JSON line per gated batch, so quarantine *rates* can be computed later.

The quarantine keeps the refused rows, but a rate needs the rows read too, per source and per day; the
lake does not remember where an event came from. So every batch appends ``{at, source, channel, read,
accepted, duplicates, refused, reasons}`` to ``lake/ingest_log/date=YYYY-MM-DD.jsonl`` (a few hundred
bytes per batch, under a file lock so concurrent jobs never interleave half lines). Reasons are counted
by kind: the row's own values are masked (``ts: cannot parse '…' as a time``).
"""

from __future__ import annotations

import fcntl
import json
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any


def channel_of(source: str) -> str:
    """``stream`` for Kafka topics, ``batch`` for files: the level at which rates are compared."""
    return "stream" if source.startswith("kafka:") else "batch"


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_NUMBER = re.compile(r"\d+")


def reason_kind(reason: str) -> str:
    """A reason without the row's own values (quoted text, numbers), so reasons can be counted."""
    return _NUMBER.sub("N", _QUOTED.sub("'…'", reason.strip())) or "unknown"


def record_batch(
    root: Path,
    source: str,
    counts: Mapping[str, int],
    refused: int,
    reasons: Mapping[str, int],
    at: datetime | None = None,
) -> None:
    """Append one batch's line: ``counts`` holds read/accepted/duplicates; ``refused`` is how many of the
    rows that arrived went to quarantine (replays included, so refused / read is the share of what
    arrived that was refused), ``reasons`` how often each reason occurred among them."""
    when = at or datetime.now(UTC)
    kinds: Counter[str] = Counter()
    for reason, n in reasons.items():
        kinds[reason_kind(reason)] += int(n)
    line = {
        "at": when.isoformat(),
        "source": source,
        "channel": channel_of(source),
        "read": int(counts.get("read", 0)),
        "accepted": int(counts.get("accepted", 0)),
        "duplicates": int(counts.get("duplicates", 0)),
        "refused": int(refused),
        "reasons": dict(kinds),
    }
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"date={when.date().isoformat()}.jsonl"
    with open(path, "a", encoding="utf-8") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            fh.write(json.dumps(line, sort_keys=True) + "\n")
            fh.flush()
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def read_log(root: Path, start: date, end: date) -> Iterator[dict[str, Any]]:
    """Lines of the days ``start`` ≤ day < ``end`` (a torn last line after a crash is skipped)."""
    if not root.is_dir():
        return
    for path in sorted(root.glob("date=*.jsonl")):
        day = date.fromisoformat(path.stem.split("=", 1)[1])
        if not start <= day < end:
            continue
        for text in path.read_text(encoding="utf-8").splitlines():
            try:
                yield json.loads(text)
            except json.JSONDecodeError:
                continue
