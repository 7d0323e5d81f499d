"""Runtime glue between Aisle and Feast: render the repo config, apply, materialize, push, read.

Everything here is a function of :class:`Settings`; nothing touches Feast, Redis or the disk at import
time. ``feast`` itself is imported inside the entry functions, after the environment Feast should see
(``process_env``) has been exported, so merely importing this module stays cheap.

Design choices worth knowing before changing anything:

* The Feast repo directory is ``settings.paths.feast``: a rendered ``feature_store.yaml`` (online
  store derived from :func:`aisle.core.endpoints.redis_url`) plus a rendered ``aisle_definitions.py``
  that builds the objects from the same settings, so ``feast plan``/``feast apply`` run there see the
  real definitions instead of an empty repo (``feast apply`` on an empty repo would delete every
  registered view).
* Materialization watermarks: Feast advances a view's watermark (``most_recent_end_time``) only after
  the view was written, so a run that failed because Redis was down is simply re-run. We cap each view's
  window at its newest offline row (+1 µs) instead of "now", so a snapshot that lands late but is stamped
  earlier than "now" is not skipped forever. And because the embedded Redis keeps nothing across a
  restart, a marker hash in Redis records which views it holds; a view whose marker is missing is
  reloaded from its earliest row even when the registry says it was materialized.
* Feature names collide across views (``views_1d`` of a user and of an item), so every read uses full
  names (``user_features__views_1d``), in training and serving alike.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

import pandas as pd
import yaml

from aisle.core.errors import BadInput, ServiceTimeout, ServiceUnavailable
from aisle.core.settings import Settings, export_env, process_env

if TYPE_CHECKING:
    from feast import FeatureStore, FeatureView

__all__ = [
    "PROJECT",
    "apply",
    "definitions",
    "feast_connection_string",
    "get_store",
    "materialize",
    "online_features",
    "online_users",
    "push_user_recent",
    "read_user_recent",
    "render_feature_store_yaml",
    "reset_store",
    "training_set",
]

log = logging.getLogger(__name__)

PROJECT: Final = "aisle"
YAML_NAME: Final = "feature_store.yaml"
DEFINITIONS_NAME: Final = "aisle_definitions.py"
# How long a first connection attempt may take before Redis counts as unreachable.
CONNECT_TIMEOUT_S: Final = 2.0
# How long one Redis command may wait for its answer: a hung server ends a read or write after this
# (materialization writes in pipelines of modest size, well within it); request paths bound their own
# wait with a shorter ``timeout_s`` (see ``online_users``).
SOCKET_TIMEOUT_S: Final = 10.0
# redis-py 6+ retries a failed connection 3 times with exponential backoff by default, which turns
# "Redis is down" into a 4-second stall per call; one quick retry still rides over a server restart.
_RETRIES: Final = 1
_RETRY_BACKOFF_S: Final = 0.05
# Key (outside Feast's binary key space) of the hash recording which views this Redis holds.
_MARKER_KEY: Final = f"aisle:feast:{PROJECT}:materialized"
_ONE_US: Final = timedelta(microseconds=1)


# ----------------------------------------------------------------------------- config


def feast_connection_string(url: str) -> str:
    """Turn a redis URL (``redis://[user:pass@]host:port/db``, ``rediss://`` for TLS) into Feast's
    ``host:port,db=N[,ssl=true][,username=..][,password=..]`` form.

    Feast splits that string on ``,`` and ``=``, so credentials containing either cannot be passed
    through it; that is refused here with a clear message rather than mangled.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise BadInput(f"Redis URL {url!r} is not redis:// or rediss://; Feast's Redis store needs host:port")
    if not parts.hostname:
        raise BadInput(f"Redis URL {url!r} names no host")
    try:
        port = parts.port or 6379
    except ValueError:
        raise BadInput(f"Redis URL {url!r} has an invalid port") from None
    db_text = parts.path.strip("/") or parse_qs(parts.query).get("db", ["0"])[0]
    if not db_text.isdigit():
        raise BadInput(f"Redis URL {url!r} has an invalid database number {db_text!r}")
    if ":" in parts.hostname:
        raise BadInput(
            f"Redis URL {url!r}: Feast's connection string cannot carry an IPv6 address; use a name"
        )
    items = [
        f"{parts.hostname}:{port}",
        f"db={int(db_text)}",
        f"socket_connect_timeout={CONNECT_TIMEOUT_S}",
        f"socket_timeout={SOCKET_TIMEOUT_S}",
    ]
    if parts.scheme == "rediss":
        items.append("ssl=true")
    for key, raw in (("username", parts.username), ("password", parts.password)):
        if raw:
            value = unquote(raw)
            if "," in value or "=" in value:
                raise BadInput(
                    f"the Redis {key} contains ',' or '=', which Feast's connection string cannot carry"
                )
            items.append(f"{key}={value}")
    return ",".join(items)


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


def _config(settings: Settings, redis_address: str) -> dict[str, Any]:
    registry: dict[str, Any]
    if settings.feast_registry_url:
        registry = {"registry_type": "sql", "path": settings.feast_registry_url, "cache_ttl_seconds": 60}
    else:
        registry = {
            "registry_type": "file",
            "path": str(settings.paths.feast / "registry.db"),
            "cache_ttl_seconds": 60,
        }
    return {
        "project": PROJECT,
        "provider": "local",
        "registry": registry,
        "offline_store": {"type": "duckdb"},
        "online_store": {"type": "redis", "connection_string": feast_connection_string(redis_address)},
        "entity_key_serialization_version": 3,
    }


_DEFINITIONS_TEMPLATE = '''\
"""Rendered by feature_repo.store; do not edit. Lets the `feast` CLI run here see Aisle's definitions."""

from pathlib import Path

from aisle.core.settings import load_settings
from feature_repo.store import definitions

for _obj in definitions(load_settings(home=Path({home!r}))):
    globals()[f"{{type(_obj).__name__}}_{{_obj.name}}"] = _obj
'''


def render_feature_store_yaml(settings: Settings) -> Path:
    """Write ``feature_store.yaml`` (and the CLI's definitions module) under ``settings.paths.feast``.

    The online store address comes from :func:`aisle.core.endpoints.redis_url`, so it follows the embedded
    Redis to whatever port it runs on; raises ServiceUnavailable when no Redis is configured or running.
    """
    from aisle.core.endpoints import redis_url

    return _render(settings, redis_url(settings))


def _render(settings: Settings, redis_address: str) -> Path:
    repo = settings.paths.feast
    try:
        repo.mkdir(parents=True, exist_ok=True)
        text = "# Rendered from Aisle settings by feature_repo.store; edits are overwritten.\n"
        text += yaml.safe_dump(_config(settings, redis_address), sort_keys=False)
        _write_if_changed(repo / YAML_NAME, text)
        _write_if_changed(
            repo / DEFINITIONS_NAME, _DEFINITIONS_TEMPLATE.format(home=str(settings.paths.home))
        )
    except OSError as exc:
        raise BadInput(f"cannot write the Feast repo under {repo} ({exc.strerror or exc})") from None
    return repo / YAML_NAME


def _write_if_changed(path: Path, text: str) -> None:
    """Atomic, and only when different, so a concurrent reader never sees half a file. Owner-only, as
    the yaml carries the Redis password when the URL has one."""
    if path.is_file() and path.read_text() == text:
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.chmod(0o600)
    tmp.replace(path)


# ----------------------------------------------------------------------------- definitions


def definitions(settings: Settings) -> list[Any]:
    """Every Feast object of the repo: entities, sources (push source included), views, services.

    Sources are taken from the views themselves: the `feast` CLI tells objects apart by identity and
    rejects two source objects that share a name.
    """
    _feast_env(settings)
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


# ----------------------------------------------------------------------------- the store


@dataclass
class _Cached:
    store: FeatureStore
    redis_address: str
    # Registry objects for the read path: Feast rebuilds them from protos on every lookup (with runtime
    # type checks, ~1 ms), and a service object it has seen before is served from its own caches.
    lookups: dict[str, Any] = field(default_factory=dict)


_STORES: dict[Settings, _Cached] = {}
_LOCK = threading.Lock()


def _feast_env(settings: Settings) -> None:
    export_env({k: v for k, v in process_env(settings).items() if k == "FEAST_USAGE"})


def get_store(settings: Settings) -> FeatureStore:
    """The FeatureStore for these settings, built once from the rendered repo and then reused.

    Building one costs ~0.3 s (config validation, registry load), far more than an online read, so
    serving and the stream consumer must not pay it per call. When Redis turns out to be unreachable and
    the configured address has changed meanwhile (the embedded Redis restarted on another port), the
    cached store is dropped so the next call follows it.
    """
    with _LOCK:
        cached = _STORES.get(settings)
        if cached is not None:
            return cached.store
        _feast_env(settings)
        from aisle.core.endpoints import redis_url

        address = redis_url(settings)
        path = _render(settings, address)
        from feast import FeatureStore

        store = FeatureStore(repo_path=str(path.parent))
        _tune_redis_client(store)
        _STORES[settings] = _Cached(store, address)
        return store


def reset_store(settings: Settings | None = None) -> None:
    """Forget the cached store(s), e.g. after the Redis address changed; the next call rebuilds."""
    with _LOCK:
        if settings is None:
            _STORES.clear()
        else:
            _STORES.pop(settings, None)


def _redis_client(store: FeatureStore) -> Any:
    """The redis-py client Feast's Redis online store uses (created on first access).

    Feast exposes no public handle to it; we need it to bound connection retries and for the marker
    hash, and fall back to nothing when Feast's internals change shape.
    """
    online = getattr(store._get_provider(), "online_store", None)
    get_client = getattr(online, "_get_client", None)
    return get_client(store.config.online_store) if get_client is not None else None


def _tune_redis_client(store: FeatureStore) -> None:
    from redis.backoff import ConstantBackoff
    from redis.retry import Retry

    client = _redis_client(store)
    if client is not None:
        client.set_retry(Retry(ConstantBackoff(_RETRY_BACKOFF_S), _RETRIES))


def _forget_if_moved(settings: Settings) -> str:
    """After a Redis failure: drop the cached store when Redis now lives elsewhere; return the old address.

    A store whose Redis merely went down is kept (redis-py reconnects once it is back on the same
    address), so every failure reports the same address instead of a changing story.
    """
    from aisle.core.endpoints import redis_url

    with _LOCK:
        cached = _STORES.get(settings)
    if cached is None:
        return "(unknown address)"
    try:
        moved = redis_url(settings) != cached.redis_address
    except ServiceUnavailable:
        moved = False  # nothing recorded now; it may come back where it was
    if moved:
        reset_store(settings)
    return _redact(cached.redis_address)


@contextlib.contextmanager
def _redis_errors(settings: Settings, doing: str) -> Iterator[None]:
    """Turn a refused or timed-out Redis connection into one clear ServiceUnavailable."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    try:
        yield
    except (RedisConnectionError, RedisTimeoutError) as exc:
        address = _forget_if_moved(settings)
        raise ServiceUnavailable(
            f"Redis at {address} is not reachable; {doing} needs the online store "
            "(start it with `aisle services up` or check AISLE_REDIS_URL), then retry"
        ) from exc


def _ping(settings: Settings, store: FeatureStore, doing: str) -> Any:
    client = _redis_client(store)
    if client is not None:
        with _redis_errors(settings, doing):
            client.ping()
    return client


# ----------------------------------------------------------------------------- apply


def apply(settings: Settings) -> dict[str, Any]:
    """Register (or update) every definition in the registry; idempotent. Returns names and seconds."""
    start = time.perf_counter()
    objects = definitions(settings)
    store = get_store(settings)
    store.apply(objects)
    cached = _STORES.get(settings)
    if cached is not None:
        cached.lookups.clear()
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
    client = _ping(settings, store, "materialization")
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
        with _redis_errors(settings, "materialization"), _feast_chatter():
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
    with _redis_errors(settings, "materialization"):
        return {k.decode() if isinstance(k, bytes) else str(k) for k in client.hkeys(_MARKER_KEY)}


# ----------------------------------------------------------------------------- push and online reads


def push_user_recent(settings: Settings, frame: pd.DataFrame) -> None:
    """Write stream features (``tables.USER_RECENT_SCHEMA`` columns) straight to Redis, visible at once.

    Rows older than what Redis already holds for a user are skipped by Feast, so a replayed or
    out-of-order micro-batch cannot overwrite newer state.
    """
    from feature_repo import tables
    from feature_repo.data_sources import USER_RECENT_PUSH

    expected = [f.name for f in tables.USER_RECENT_SCHEMA]
    missing = [c for c in expected if c not in frame.columns]
    if missing:
        raise BadInput(f"user_recent push frame lacks column(s) {', '.join(missing)}")
    if frame.empty:
        return
    frame = frame[expected].copy()
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    store = get_store(settings)
    from feast.data_source import PushMode

    with _redis_errors(settings, "pushing stream features"):
        store.push(USER_RECENT_PUSH, frame, to=PushMode.ONLINE)


def _read_path_lookups(settings: Settings, store: FeatureStore) -> tuple[Any, list[str], list[str]]:
    """The ``retrieval`` service, the item feature refs and the user_recent refs, looked up once per
    cached store."""
    from feature_repo.feature_services import RETRIEVAL
    from feature_repo.feature_views import ITEM_FEATURES, USER_RECENT

    cached = _STORES.get(settings)
    lookups = cached.lookups if cached is not None and cached.store is store else {}
    if "service" not in lookups:
        lookups["service"] = store.get_feature_service(RETRIEVAL)
        view = store.get_feature_view(ITEM_FEATURES)
        lookups["item_refs"] = [f"{ITEM_FEATURES}:{f.name}" for f in view.features]
        recent = store.get_feature_view(USER_RECENT)
        lookups["recent_refs"] = [f"{USER_RECENT}:{f.name}" for f in recent.features]
    return lookups["service"], lookups["item_refs"], lookups["recent_refs"]


def online_features(settings: Settings, user_id: str, item_ids: list[str] | None = None) -> dict[str, Any]:
    """Latest online features of one user (the ``retrieval`` service) and optionally of items.

    Returns ``{"user": {name: value}, "items": {item_id: {name: value}}}`` with full feature names;
    a value is None where Redis holds nothing. One round trip per entity kind.
    """
    store = get_store(settings)
    service, item_refs, _ = _read_path_lookups(settings, store)
    with _redis_errors(settings, "an online feature read"):
        user = store.get_online_features(
            features=service, entity_rows=[{"user_id": user_id}], full_feature_names=True
        ).to_dict()
        result: dict[str, Any] = {"user": {k: v[0] for k, v in user.items()}, "items": {}}
        if item_ids:
            items = store.get_online_features(
                features=item_refs, entity_rows=[{"item_id": i} for i in item_ids], full_feature_names=True
            ).to_dict()
            names = list(items)
            result["items"] = {
                item_id: {n: items[n][i] for n in names} for i, item_id in enumerate(items["item_id"])
            }
    return result


def _rows(columns: dict[str, list[Any]], key: str) -> dict[str, dict[str, Any]]:
    keys = columns.pop(key)
    return {str(k): {name: values[i] for name, values in columns.items()} for i, k in enumerate(keys)}


def read_user_recent(settings: Settings, user_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The ``user_recent`` rows of many users (plain column names; all None for an unknown user)."""
    store = get_store(settings)
    _, _, refs = _read_path_lookups(settings, store)
    with _redis_errors(settings, "reading the stream features"):
        columns = store.get_online_features(
            features=refs, entity_rows=[{"user_id": u} for u in user_ids]
        ).to_dict()
    return _rows(columns, "user_id")


_READERS: ThreadPoolExecutor | None = None


def _readers() -> ThreadPoolExecutor:
    global _READERS
    with _LOCK:
        if _READERS is None:
            _READERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="aisle-online-read")
        return _READERS


def online_users(
    settings: Settings, user_ids: list[str], timeout_s: float | None = None
) -> dict[str, dict[str, Any]]:
    """The ``retrieval`` service (user features and the user_recent view) of many users, full names.

    With ``timeout_s`` the read runs on a worker thread and a slow Redis raises ServiceTimeout after
    that long, so a caller on a request path never hangs; the abandoned read ends at the socket timeout.
    Raises ServiceUnavailable when Redis is down.
    """

    def read() -> dict[str, dict[str, Any]]:
        store = get_store(settings)
        service, _, _ = _read_path_lookups(settings, store)
        with _redis_errors(settings, "an online feature read"):
            columns = store.get_online_features(
                features=service, entity_rows=[{"user_id": u} for u in user_ids], full_feature_names=True
            ).to_dict()
        return _rows(columns, "user_id")

    if not user_ids:
        return {}
    if timeout_s is None:
        return read()
    future = _readers().submit(read)
    try:
        return future.result(timeout=timeout_s)
    except FutureTimeout:
        future.cancel()
        raise ServiceTimeout(
            f"the online store did not answer within {timeout_s * 1000:.0f} ms (Redis slow or overloaded)"
        ) from None


# ----------------------------------------------------------------------------- training sets


def training_set(
    settings: Settings, entity_df: pd.DataFrame, feature_service: str = "ranking"
) -> pd.DataFrame:
    """Point-in-time join: each row gets the newest feature row stamped at or before its
    ``event_timestamp`` (and within the view's TTL), never a later one.

    ``entity_df`` holds the join keys of the service's views (``user_id``, plus ``item_id`` for
    ranking), ``event_timestamp`` and any label columns. Views without offline files yet (typically
    ``user_recent``, which the stream writes only online) come back as null columns and are listed in
    ``frame.attrs["missing_views"]``, so a model's input layout does not depend on what exists today.
    """
    from feature_repo.data_sources import has_data

    if "event_timestamp" not in entity_df.columns:
        raise BadInput("the entity frame needs an event_timestamp column (the label's time)")
    store = get_store(settings)
    try:
        service = store.get_feature_service(feature_service)
    except Exception as exc:  # FeatureServiceNotFoundException and registry errors
        raise BadInput(f"unknown feature service {feature_service!r}; run `apply` first? ({exc})") from None
    present: list[str] = []
    missing: dict[str, list[str]] = {}
    needed_keys: set[str] = set()
    for projection in service.feature_view_projections:
        view = store.get_feature_view(projection.name)
        needed_keys.update(c.name for c in view.entity_columns)
        refs = [f"{projection.name_to_use()}:{f.name}" for f in projection.features]
        source = getattr(view.batch_source, "name", view.name)
        if has_data(settings, source):
            present.extend(refs)
        else:
            missing[projection.name_to_use()] = [f.name for f in projection.features]
    absent = sorted(needed_keys - set(entity_df.columns))
    if absent:
        raise BadInput(
            f"the entity frame lacks join key column(s) {', '.join(absent)} for {feature_service!r}"
        )
    frame = entity_df.copy()
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    if present:
        with warnings.catch_warnings():  # ibis's own DeprecationWarning about a DuckDB call it makes
            warnings.simplefilter("ignore", DeprecationWarning)
            frame = store.get_historical_features(
                entity_df=frame, features=present, full_feature_names=True
            ).to_df()
    for view_name, names in missing.items():
        for name in names:
            frame[f"{view_name}__{name}"] = None
    if missing:  # expected for stream-only views (user_recent); callers see frame.attrs["missing_views"]
        log.info("no offline data for %s; their features are null", ", ".join(missing))
    frame.attrs["missing_views"] = sorted(missing)
    return frame
