"""Register the repo's objects with Feast (apply) and copy offline rows into Redis (materialize).

Materialization watermarks: Feast advances a view's watermark (``most_recent_end_time``) only after the
view was written, so a run that failed because Redis was down is simply re-run. We cap each view's
window at its newest offline row (+1 µs) instead of "now", so a snapshot that lands late but is stamped
earlier than "now" is not skipped forever. And because the embedded Redis keeps nothing across a
restart, a marker hash in Redis records which views it holds; a view whose marker is missing is reloaded
from its earliest row even when the registry says it was materialized.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from aisle.core.settings import Settings
from feature_repo.config import PROJECT
from feature_repo.store import feast_env, get_store, lookups, ping, redis_errors

if TYPE_CHECKING:
    from feast import FeatureView

log = logging.getLogger(__name__)

# Key (outside Feast's binary key space) of the hash recording which views this Redis holds.
_MARKER_KEY: Final = f"aisle:feast:{PROJECT}:materialized"
_ONE_US: Final = timedelta(microseconds=1)


def definitions(settings: Settings) -> list[Any]:
    """Every Feast object of the repo: entities, sources (push source included), views, services.

    Sources are taken from the views themselves: the `feast` CLI tells objects apart by identity and
    rejects two source objects that share a name.
    """
    feast_env(settings)
    from feature_repo.entities import entities
    from feature_repo.feature_services import feature_services
    from feature_repo.feature_views import feature_views

    views = feature_views(settings)
    sources: list[Any] = []
    for view in views.values():
        for source in (view.batch_source, view.stream_source):
            if source is not None and all(source is not seen for seen in sources):
                sources.append(source)
    return [*entities().values(), *sources, *views.values(), *feature_services(views).values()]


# ----------------------------------------------------------------------------- apply


def apply(settings: Settings) -> dict[str, Any]:
    """Register (or update) every definition in the registry; idempotent. Returns names and seconds."""
    start = time.perf_counter()
    objects = definitions(settings)
    store = get_store(settings)
    store.apply(objects)
    lookups(settings, store).clear()
    kinds: dict[str, list[str]] = {}
    for obj in objects:
        kinds.setdefault(type(obj).__name__, []).append(obj.name)
    return {
        "project": PROJECT,
        "repo": str(settings.paths.feast),
        "objects": kinds,
        "seconds": round(time.perf_counter() - start, 3),
    }


# ----------------------------------------------------------------------------- materialize


@dataclass(frozen=True)
class _Window:
    start: datetime
    end: datetime
    rows: int


def _offline_window(
    settings: Settings, view: FeatureView, start: datetime | None, end: datetime
) -> _Window | None:
    """The window to materialize for ``view`` and how many entity rows it holds, from the Parquet files.

    ``start`` None means "from the earliest row". The end is capped at the newest row + 1 µs, so the
    watermark never runs ahead of the data (a snapshot stamped before "now" but written later is still
    picked up). None when there is nothing to write.
    """
    import duckdb

    from feature_repo.data_sources import has_data, table_glob

    source = view.batch_source
    table = getattr(source, "name", view.name)
    if source is None or not has_data(settings, table):
        return None
    keys = ", ".join(f'"{c.name}"' for c in view.entity_columns)
    ts = f'CAST("{source.timestamp_field}" AS TIMESTAMPTZ)'
    glob = table_glob(settings, table).replace("'", "''")
    con = duckdb.connect()
    try:
        # Naive timestamps (a writer that dropped the zone) are read as UTC, and results come back in UTC.
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet('{glob}')")
        lo, hi = con.execute(f"SELECT min({ts}), max({ts}) FROM t").fetchone() or (None, None)
        if lo is None or hi is None:
            return None
        window_start = start if start is not None else lo
        window_end = min(end, hi + _ONE_US)
        if window_start >= window_end:
            return None
        (rows,) = con.execute(
            f"SELECT count(*) FROM (SELECT DISTINCT {keys} FROM t WHERE {ts} >= ? AND {ts} <= ?)",
            [window_start, window_end],
        ).fetchone() or (0,)
    finally:
        con.close()
    return _Window(window_start, window_end, int(rows))


def materialize(settings: Settings, end: datetime | None = None) -> dict[str, Any]:
    """Copy the newest offline row of every entity into Redis, incrementally, up to ``end`` (default now).

    First run (or a Redis that lost its data): from each view's earliest row. Later runs: from the
    view's watermark. A view without offline files yet is skipped and reported. Raises
    ServiceUnavailable when Redis is down; nothing is recorded then, so re-running after Redis is back
    writes everything. Returns per-view rows and seconds, and totals.
    """
    end = (end or datetime.now(UTC)).astimezone(UTC)
    store = get_store(settings)
    client = ping(settings, store, "materialization")
    store.refresh_registry()
    held = _held_views(settings, client)
    summary: dict[str, Any] = {"end": end.isoformat(), "views": {}}
    started = time.perf_counter()
    total = 0
    for view in sorted(store.list_feature_views(), key=lambda v: v.name):
        if not view.online:
            continue
        watermark = view.most_recent_end_time if view.name in held else None
        if watermark is not None and watermark.tzinfo is None:
            watermark = watermark.replace(tzinfo=UTC)
        window = _offline_window(settings, view, watermark, end)
        if window is None:
            summary["views"][view.name] = {"rows": 0, "seconds": 0.0, "note": "no new offline rows"}
            continue
        t0 = time.perf_counter()
        with redis_errors(settings, "materialization"), _feast_chatter():
            if watermark is None:
                store.materialize(window.start, window.end, feature_views=[view.name])
            else:
                store.materialize_incremental(window.end, feature_views=[view.name])
            if client is not None:
                client.hset(_MARKER_KEY, view.name, window.end.isoformat())
        seconds = time.perf_counter() - t0
        total += window.rows
        summary["views"][view.name] = {
            "rows": window.rows,
            "seconds": round(seconds, 3),
            "from": window.start.isoformat(),
            "to": window.end.isoformat(),
            "full_reload": watermark is None,
        }
    summary["rows"] = total
    summary["seconds"] = round(time.perf_counter() - started, 3)
    return summary


@contextlib.contextmanager
def _feast_chatter() -> Iterator[None]:
    """Feast prints coloured progress lines to stdout; keep stdout for our JSON summary, log them instead."""
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            yield
    finally:
        if buffer.getvalue().strip():
            log.debug("feast: %s", buffer.getvalue().strip())


def _held_views(settings: Settings, client: Any) -> set[str]:
    if client is None:  # unknown client shape: trust the registry's watermarks
        return {v.name for v in get_store(settings).list_feature_views()}
    with redis_errors(settings, "materialization"):
        return {k.decode() if isinstance(k, bytes) else str(k) for k in client.hkeys(_MARKER_KEY)}
