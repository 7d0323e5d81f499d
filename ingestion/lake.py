"""The event lake and the quarantine: append-only Parquet parts, deduplicated, crash-safe.

Layout under ``AISLE_HOME``::

    lake/events/event_date=YYYY-MM-DD/part-<ns>-<rand>.parquet     validated events, microsecond ts
    lake/catalog/catalog.parquet                                   latest catalog (upserted by item_id)
    quarantine/{events,catalog}/date=YYYY-MM-DD/part-*.parquet     row, reason, source, stage, key, at
    lake/users/users.parquet                                       latest user attributes (upserted)

Deduplication keys (``event_id`` for the lake, a hash of source + original row for the quarantine) are
held in a 64-bit hash index rebuilt from the parts themselves when a writer opens, so the index can
never disagree with the data after a crash. Parts are written to a temporary name, fsynced and renamed,
so a reader sees a part whole or not at all. A file lock serialises writers across processes.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from aisle.core.schemas import CATALOG_SCHEMA, EVENT_SCHEMA, REJECTED_SCHEMA, USER_SCHEMA

QUARANTINE_SCHEMA = pa.schema(
    [*REJECTED_SCHEMA, pa.field("key", pa.uint64()), pa.field("quarantined_at", pa.timestamp("us", tz="UTC"))]
)


def hash_strings(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """64-bit hashes of strings (vectorised). Collisions are ~n²/2⁶⁵: 3·10⁻⁶ for 10M distinct ids."""
    arr = values.to_numpy(zero_copy_only=False) if len(values) else np.empty(0, dtype=object)
    return pd.util.hash_array(np.asarray(arr, dtype=object), categorize=False).astype(np.uint64)


class HashIndex:
    """uint64 keys → uint64 values: one big sorted array pair plus a small dict of recent additions.

    The value is a row's content hash where the writer knew it (0 = not known; see
    :meth:`EventLake.write`): enough to tell a replayed event from a conflicting one without rereading.
    """

    def __init__(self) -> None:
        self._keys = np.empty(0, dtype=np.uint64)
        self._values = np.empty(0, dtype=np.uint64)
        self._recent: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._keys) + len(self._recent)

    def lookup(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(found, value) per hash; value 0 where not found or not known."""
        found = np.zeros(len(hashes), dtype=bool)
        values = np.zeros(len(hashes), dtype=np.uint64)
        if len(self._keys):
            pos = np.minimum(np.searchsorted(self._keys, hashes), len(self._keys) - 1)
            hit = self._keys[pos] == hashes
            found |= hit
            values[hit] = self._values[pos[hit]]
        if self._recent:
            for k, h in enumerate(hashes.tolist()):
                v = self._recent.get(h)
                if v is not None:
                    found[k] = True
                    values[k] = v
        return found, values

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        return self.lookup(hashes)[0]

    def add(self, hashes: np.ndarray, values: np.ndarray | None = None) -> None:
        hashes = np.asarray(hashes, dtype=np.uint64)
        values = np.zeros(len(hashes), np.uint64) if values is None else np.asarray(values, np.uint64)
        if len(hashes) > 50_000 or len(self._recent) + len(hashes) > 200_000:
            keys = [self._keys, hashes, np.fromiter(self._recent, np.uint64, len(self._recent))]
            vals = [self._values, values, np.fromiter(self._recent.values(), np.uint64, len(self._recent))]
            both, with_values = np.concatenate(keys), np.concatenate(vals)
            order = np.argsort(both, kind="stable")  # earlier additions first: they win below
            both, with_values = both[order], with_values[order]
            first = np.r_[True, both[1:] != both[:-1]] if len(both) else np.zeros(0, bool)
            self._keys, self._values = both[first], with_values[first]
            self._recent.clear()
        else:
            for h, v in zip(hashes.tolist(), values.tolist(), strict=True):
                self._recent.setdefault(h, v)


def content_hashes(events: pa.Table) -> np.ndarray:
    """A 64-bit hash of each event's content (every field), never 0 (0 means "unknown" in the index)."""
    from ingestion.rejects import rows_as_json

    hashes = hash_strings(rows_as_json(events.select(EVENT_SCHEMA.names)))
    return np.where(hashes == 0, np.uint64(1), hashes)


def first_occurrence(hashes: np.ndarray) -> np.ndarray:
    """Mask keeping the first row of each hash within a batch."""
    _, first = np.unique(hashes, return_index=True)
    mask = np.zeros(len(hashes), dtype=bool)
    mask[first] = True
    return mask


def _days(ts: pa.ChunkedArray) -> np.ndarray:
    micros = ts.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy()
    return micros // 86_400_000_000


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_part(table: pa.Table, directory: Path) -> Path:
    """Write one Parquet part atomically and durably (tmp → fsync → rename → fsync dir)."""
    directory.mkdir(parents=True, exist_ok=True)
    name = f"part-{time.time_ns()}-{secrets.token_hex(4)}.parquet"
    tmp = directory / f".{name}.tmp"
    pq.write_table(table, tmp, coerce_timestamps="us", allow_truncated_timestamps=True)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, directory / name)
    _fsync_dir(directory)
    return directory / name


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


@dataclass
class WriteCounts:
    written: int = 0
    duplicates: int = 0  # the same key (and, for events, the same content) as a stored or earlier row
    conflicts: int = 0  # the same event_id as a stored or earlier row, with other content: not written
    fresh: np.ndarray | None = None  # per input row: written
    conflicted: np.ndarray | None = None  # per input row: a conflict


class _PartStore:
    """Append-only partitioned parts with a dedup key column, shared by lake and quarantine."""

    key_column: str
    partition: str
    schema: pa.Schema

    def __init__(self, root: Path) -> None:
        self.root = root
        self.index = HashIndex()
        self._known_parts: set[Path] = set()
        self._lock = root / ".lock"
        self._swept = False

    def _keys(self, table: pa.Table) -> np.ndarray:
        return hash_strings(table[self.key_column])

    def _partition_days(self, table: pa.Table) -> np.ndarray:
        """Day number (days since 1970-01-01 UTC) of each row; rows arrive sorted by it."""
        raise NotImplementedError

    def parts(self) -> list[Path]:
        return sorted(self.root.glob("*=*/part-*.parquet")) if self.root.exists() else []

    def _sweep(self) -> None:
        """Remove temporaries a killed writer left behind. Called under the lock, which every writer holds
        while its temporary exists, so any temporary seen now belongs to a writer that is gone."""
        if self._swept or not self.root.exists():
            return
        for tmp in self.root.glob("*=*/.part-*.tmp"):
            tmp.unlink(missing_ok=True)
        self._swept = True

    def _refresh(self) -> None:
        """Index the parts written since we last looked (by us before a crash, or another process)."""
        new = [p for p in self.parts() if p not in self._known_parts]
        if not new:
            return
        keys = ds.dataset(new, format="parquet").to_table(columns=[self.key_column])
        self.index.add(self._keys(keys))
        self._known_parts.update(new)

    def holds(self, table: pa.Table) -> np.ndarray:
        """Which rows :meth:`write` would count as duplicates now (already stored, or repeated earlier in
        ``table``). Reads only: no lock file, no part, nothing created (a dry run uses it)."""
        self._refresh()
        keys = self._keys(table)
        return ~(first_occurrence(keys) & ~self.index.contains(keys))

    def _stored_content(self, table: pa.Table, keys: np.ndarray) -> np.ndarray:
        """Content hashes of the stored rows with these keys (for rows the index has no value for)."""
        return np.zeros(len(keys), np.uint64)

    def write(self, table: pa.Table, content: np.ndarray | None = None) -> WriteCounts:
        """Append the rows whose key is new. With ``content`` (a hash per row), a row whose key is known
        but whose content differs is a conflict: reported, not written, not counted as a duplicate."""
        if table.num_rows == 0:
            return WriteCounts(fresh=np.zeros(0, bool), conflicted=np.zeros(0, bool))
        with file_lock(self._lock):
            self._sweep()
            self._refresh()
            keys = self._keys(table)
            first = first_occurrence(keys)
            found, stored = self.index.lookup(keys)
            fresh = first & ~found
            conflicted = np.zeros(len(keys), dtype=bool)
            if content is not None and not fresh.all():
                unknown = found & (stored == 0)
                if unknown.any():
                    stored[unknown] = self._stored_content(table.filter(pa.array(unknown)), keys[unknown])
                _, first_at, inverse = np.unique(keys, return_index=True, return_inverse=True)
                reference = np.where(found, stored, content[first_at[inverse]])
                conflicted = ~fresh & (content != reference) & (reference != 0)
            new_rows = table.filter(pa.array(fresh))
            if new_rows.num_rows:
                days = self._partition_days(new_rows)
                starts = np.flatnonzero(np.r_[True, days[1:] != days[:-1]])
                ends = np.r_[starts[1:], len(days)]
                for lo, hi in zip(starts, ends, strict=True):
                    date = np.datetime64(int(days[lo]), "D")
                    part = new_rows.slice(int(lo), int(hi - lo))  # zero-copy: rows are sorted by day
                    self._known_parts.add(write_part(part, self.root / f"{self.partition}={date}"))
                self.index.add(keys[fresh], None if content is None else content[fresh])
        return WriteCounts(
            written=int(fresh.sum()),
            duplicates=int((~fresh & ~conflicted).sum()),
            conflicts=int(conflicted.sum()),
            fresh=fresh,
            conflicted=conflicted,
        )

    def read(self) -> pa.Table:
        parts = self.parts()
        if not parts:
            return self.schema.empty_table()
        return ds.dataset(parts, format="parquet", schema=self.schema).to_table()

    def count(self) -> int:
        parts = self.parts()
        return ds.dataset(parts, format="parquet").count_rows() if parts else 0

    def read_range(
        self, column: str, start: datetime, end: datetime, columns: list[str] | None = None
    ) -> pa.Table:
        """Rows with ``start <= column < end``, reading only the day partitions that can hold them."""
        first, last = start.astimezone(UTC).date().isoformat(), end.astimezone(UTC).date().isoformat()
        parts = [p for p in self.parts() if first <= p.parent.name.split("=", 1)[1] <= last]
        schema = self.schema if columns is None else pa.schema([self.schema.field(c) for c in columns])
        if not parts:
            return schema.empty_table()
        kind = self.schema.field(column).type
        field = ds.field(column)
        where = (field >= pa.scalar(start, kind)) & (field < pa.scalar(end, kind))
        return ds.dataset(parts, format="parquet", schema=self.schema).to_table(columns=columns, filter=where)


class EventLake(_PartStore):
    key_column = "event_id"
    partition = "event_date"
    schema = EVENT_SCHEMA

    def __init__(self, lake_root: Path) -> None:
        super().__init__(lake_root / "events")
        self.catalog_path = lake_root / "catalog" / "catalog.parquet"
        self.users_path = lake_root / "users" / "users.parquet"

    def _partition_days(self, table: pa.Table) -> np.ndarray:
        return _days(table["ts"])

    def write(self, table: pa.Table, content: np.ndarray | None = None) -> WriteCounts:
        """Events in any order; parts are written sorted by ``ts``. A replayed event (same id, same
        content) is a duplicate; the same id with other content is a conflict (see :class:`WriteCounts`).
        The masks in the result follow the input order."""
        table = table.select(EVENT_SCHEMA.names).cast(EVENT_SCHEMA)
        order = pc.sort_indices(table["ts"]).to_numpy()
        ordered = table.take(pa.array(order))
        counts = super().write(ordered, content_hashes(ordered))
        for name in ("fresh", "conflicted"):
            mask = getattr(counts, name)
            if mask is not None:
                back = np.empty_like(mask)
                back[order] = mask
                setattr(counts, name, back)
        return counts

    def _stored_content(self, table: pa.Table, keys: np.ndarray) -> np.ndarray:
        stored = self.versions(table["event_id"])
        if stored.num_rows == 0:
            return np.zeros(len(keys), np.uint64)
        by_key = dict(
            zip(hash_strings(stored["event_id"]).tolist(), content_hashes(stored).tolist(), strict=True)
        )
        return np.array([by_key.get(k, 0) for k in keys.tolist()], dtype=np.uint64)

    def versions(self, event_ids: pa.Array | pa.ChunkedArray) -> pa.Table:
        """The stored events with these ids (a scan of the lake: used for the rare replay or conflict)."""
        parts = self.parts()
        if not parts or len(event_ids) == 0:
            return EVENT_SCHEMA.empty_table()
        dataset = ds.dataset(parts, format="parquet", schema=EVENT_SCHEMA)
        return dataset.to_table(filter=pc.field("event_id").isin(pc.unique(event_ids)))

    # --- catalog: small, replaced by upsert rather than appended
    def read_catalog(self) -> pa.Table | None:
        return pq.read_table(self.catalog_path) if self.catalog_path.exists() else None

    def known_items(self) -> set[str] | None:
        catalog = self.read_catalog()
        return set(catalog["item_id"].to_pylist()) if catalog is not None else None

    def upsert_catalog(self, catalog: pa.Table) -> int:
        """Merge items into the lake's catalog (newer rows win); returns the catalog size."""
        return upsert_table(self.catalog_path, catalog, "item_id", CATALOG_SCHEMA)

    def upsert_users(self, users: pa.Table) -> int:
        """Users carry attributes, not events: merged like the catalog; returns the number of users."""
        return upsert_table(self.users_path, users, "user_id", USER_SCHEMA)


def upsert_table(path: Path, table: pa.Table, key: str, schema: pa.Schema) -> int:
    """Replace ``path`` by its rows whose ``key`` is not in ``table``, plus ``table`` (locked, atomic)."""
    table = table.select(schema.names).cast(schema)
    with file_lock(path.parent / ".lock"):
        if path.exists():
            old = pq.read_table(path).cast(schema)
            table = pa.concat_tables([old.filter(pc.invert(pc.is_in(old[key], table[key]))), table])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        pq.write_table(table.sort_by(key), tmp, coerce_timestamps="us", allow_truncated_timestamps=True)
        os.replace(tmp, path)
    return table.num_rows


class Quarantine(_PartStore):
    key_column = "key"
    partition = "date"
    schema = QUARANTINE_SCHEMA

    def __init__(self, quarantine_root: Path, kind: str = "events") -> None:
        super().__init__(quarantine_root / kind)

    def _keys(self, table: pa.Table) -> np.ndarray:
        return table["key"].to_numpy()

    def _partition_days(self, table: pa.Table) -> np.ndarray:
        return _days(table["quarantined_at"])

    def write(self, table: pa.Table, content: np.ndarray | None = None) -> WriteCounts:
        """``table`` has REJECTED_SCHEMA. The key is a hash of the original bytes (the row text where there
        are none) and of the occurrence of those bytes in this write: the same file from another path, or
        the same messages replayed, add nothing, while two identical bad lines of one file stay two rows.
        (``content`` is unused: for the quarantine the key is the content.)"""
        if table.num_rows == 0:
            return WriteCounts(fresh=np.zeros(0, bool), conflicted=np.zeros(0, bool))
        table = table.select(REJECTED_SCHEMA.names).cast(REJECTED_SCHEMA)
        raw = table["raw"].to_pylist()
        text = table["row"].to_pylist()
        original = [
            (r.decode("latin-1") if r is not None else "\x1e" + (t or ""))
            for r, t in zip(raw, text, strict=True)
        ]
        occurrence = pd.Series(original).groupby(original).cumcount().to_numpy()
        key_text = pa.array([f"{c}\x1f{k}" for c, k in zip(original, occurrence.tolist(), strict=True)])
        now = pa.array(np.full(table.num_rows, time.time_ns() // 1000), pa.timestamp("us", tz="UTC"))
        keyed = table.append_column("key", pa.array(hash_strings(key_text), pa.uint64())).append_column(
            "quarantined_at", now
        )
        return super().write(keyed)
