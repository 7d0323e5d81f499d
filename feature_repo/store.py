"""The FeatureStore for a set of settings, built once and reused, and what a Redis failure means.

Everything here is a function of :class:`Settings`; nothing touches Feast, Redis or the disk at import
time. ``feast`` itself is imported inside the functions, after the environment Feast should see
(``process_env``) has been exported, so merely importing this module stays cheap. The jobs around the
store live in their own modules: ``config`` (rendering), ``materialization`` (apply, materialize),
``online`` (push and online reads), ``training_sets`` (point-in-time joins).

Feature names collide across views (``views_1d`` of a user and of an item), so every read uses full
names (``user_features__views_1d``), in training and serving alike.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from aisle.core.errors import ServiceUnavailable
from aisle.core.settings import Settings, export_env, process_env
from feature_repo.config import redact, render

if TYPE_CHECKING:
    from feast import FeatureStore

# redis-py 6+ retries a failed connection 3 times with exponential backoff by default, which turns
# "Redis is down" into a 4-second stall per call; one quick retry still rides over a server restart.
_RETRIES: Final = 1
_RETRY_BACKOFF_S: Final = 0.05


@dataclass
class _Cached:
    store: FeatureStore
    redis_address: str
    # Registry objects for the read path: Feast rebuilds them from protos on every lookup (with runtime
    # type checks, ~1 ms), and a service object it has seen before is served from its own caches.
    lookups: dict[str, Any] = field(default_factory=dict)


_STORES: dict[Settings, _Cached] = {}
_LOCK = threading.Lock()


def feast_env(settings: Settings) -> None:
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
        feast_env(settings)
        from aisle.core.endpoints import redis_url

        address = redis_url(settings)
        path = render(settings, address)
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


def redis_client(store: FeatureStore) -> Any:
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

    client = redis_client(store)
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
    return redact(cached.redis_address)


@contextlib.contextmanager
def redis_errors(settings: Settings, doing: str) -> Iterator[None]:
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


def ping(settings: Settings, store: FeatureStore, doing: str) -> Any:
    client = redis_client(store)
    if client is not None:
        with redis_errors(settings, doing):
            client.ping()
    return client


def lookups(settings: Settings, store: FeatureStore) -> dict[str, Any]:
    """A per-store cache for registry objects that readers look up once (cleared by ``apply``)."""
    cached = _STORES.get(settings)
    return cached.lookups if cached is not None and cached.store is store else {}
