"""The request-path read of a shopper's online state, straight from the Redis hashes Feast wrote.

``FeatureStore.get_online_features`` costs ~1-3 ms of Python per call (entity protos, registry lookups,
a response proto, ``to_dict``) for what is one ``HMGET`` per shopper, and bounding it needs a thread
handoff. This reads the same hashes with redis-py: one pipelined round trip for every shopper, every
socket operation bounded by the caller's timeout (on the caller's thread, no handoff), and decodes the
values with Feast's own functions, so the answer is exactly :func:`feature_repo.online.feast_online_users`'
(``tests/integration/test_feast_store.py`` checks it on a materialized and pushed store).

What it relies on, Feast 0.67's Redis layout: a hash per entity, keyed by the serialized entity key plus
the project name; in it, per feature view, one field per feature (``mmh3("view:feature")``, a serialized
``ValueProto``) and ``_ts:view``. The layout of the ``retrieval`` feature service (views, features and
their types) is read from the registry once per cached store.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from aisle.core.errors import ServiceTimeout
from aisle.core.settings import Settings
from feature_repo.store import get_store, lookups, redis_errors

if TYPE_CHECKING:
    from feast import FeatureStore

#: One quick retry of a refused or dropped connection (a Redis restart); a timeout is never retried.
_RETRY_BACKOFF_S: Final = 0.05


#: Values Feast's ``feast_value_type_to_python_type`` returns as they are (scalars) or as a plain list:
#: decoded here without it (~6 µs a value, ~30 values a shopper); every other kind goes through it.
_PLAIN_SCALARS: Final = frozenset(
    ("string_val", "bytes_val", "int32_val", "int64_val", "double_val", "float_val", "bool_val")
)
_PLAIN_LISTS: Final = frozenset(f"{kind[:-4]}_list_val" for kind in _PLAIN_SCALARS)


@functools.cache
def _plain_kinds() -> frozenset[Any]:
    """Feast value types decoded as they are (imported on first read: Feast is slow to import)."""
    from feast.value_type import ValueType

    names = ("STRING", "BYTES", "INT32", "INT64", "DOUBLE", "FLOAT", "BOOL")
    return frozenset(getattr(ValueType, n) for n in (*names, *(f"{n}_LIST" for n in names)))


@dataclass(frozen=True)
class Layout:
    """Where the ``retrieval`` service's features live in a shopper's hash."""

    project: bytes
    key_version: int
    fields: tuple[bytes, ...]  # hash fields, one per feature
    names: tuple[str, ...]  # full feature names (``view__feature``), aligned with ``fields``
    types: tuple[Any, ...]  # Feast ValueType per feature, for decoding


def retrieval_layout(store: FeatureStore, settings: Settings) -> Layout:
    """The layout of the ``retrieval`` service (looked up once per cached store)."""
    found = lookups(settings, store)
    layout = found.get("direct_layout")
    if layout is None:
        from feast.infra.online_stores.helpers import _mmh3, compute_versioned_name

        from feature_repo.feature_services import RETRIEVAL

        service = store.get_feature_service(RETRIEVAL)
        versioned = bool(getattr(store.config.registry, "enable_online_feature_view_versioning", False))
        fields: list[bytes] = []
        names: list[str] = []
        types: list[Any] = []
        for projection in service.feature_view_projections:
            view = store.get_feature_view(projection.name)
            stored_as = compute_versioned_name(view, versioned)
            for feature in projection.features:
                fields.append(_mmh3(f"{stored_as}:{feature.name}"))
                names.append(f"{projection.name_to_use()}__{feature.name}")
                types.append(feature.dtype.to_value_type())
        layout = Layout(
            project=store.config.project.encode(),
            key_version=int(store.config.entity_key_serialization_version),
            fields=tuple(fields),
            names=tuple(names),
            types=tuple(types),
        )
        found["direct_layout"] = layout
    return layout


class _Clients:
    """One redis-py client per (address, timeout): socket timeouts are fixed when a client is made."""

    def __init__(self) -> None:
        self._clients: dict[tuple[str, float], Any] = {}
        self._lock = threading.Lock()

    def get(self, address: str, timeout_s: float) -> Any:
        key = (address, timeout_s)
        client = self._clients.get(key)
        if client is None:
            import redis
            from redis.backoff import ConstantBackoff
            from redis.exceptions import ConnectionError as RedisConnectionError
            from redis.retry import Retry

            with self._lock:
                client = self._clients.get(key)
                if client is None:
                    client = redis.Redis.from_url(
                        address,
                        socket_timeout=timeout_s,
                        socket_connect_timeout=timeout_s,
                        retry=Retry(ConstantBackoff(_RETRY_BACKOFF_S), 1, (RedisConnectionError,)),
                    )
                    self._clients[key] = client
        return client

    def forget(self, address: str) -> None:
        with self._lock:
            for key in [k for k in self._clients if k[0] == address]:
                self._clients.pop(key).close()


_CLIENTS = _Clients()
_ADDRESSES: dict[Settings, str] = {}


def _address(settings: Settings) -> str:
    address = _ADDRESSES.get(settings)
    if address is None:
        from aisle.core.endpoints import redis_url

        address = _ADDRESSES[settings] = redis_url(settings)
    return address


def direct_online_users(
    settings: Settings, user_ids: list[str], timeout_s: float
) -> dict[str, dict[str, Any]]:
    """The ``retrieval`` service of many users, full feature names, None where Redis holds nothing.

    One pipelined round trip; every socket operation waits at most ``timeout_s``: a slow Redis raises
    ServiceTimeout, a dead one ServiceUnavailable (after one quick reconnect attempt).
    """
    if not user_ids:
        return {}
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value
    from feast.type_map import feast_value_type_to_python_type
    from redis.exceptions import TimeoutError as RedisTimeoutError

    layout = retrieval_layout(get_store(settings), settings)
    address = _address(settings)
    client = _CLIENTS.get(address, timeout_s)
    keys = [
        serialize_entity_key(
            EntityKey(join_keys=["user_id"], entity_values=[Value(string_val=user)]),
            entity_key_serialization_version=layout.key_version,
        )
        + layout.project
        for user in user_ids
    ]
    try:
        with redis_errors(settings, "an online feature read"):
            try:
                if len(keys) == 1:  # a request reads one shopper: no pipeline object to build
                    replies = [client.hmget(keys[0], layout.fields)]
                else:
                    with client.pipeline(transaction=False) as pipe:
                        for key in keys:
                            pipe.hmget(key, layout.fields)
                        replies = pipe.execute()
            except RedisTimeoutError:
                raise ServiceTimeout(
                    f"the online store did not answer within {timeout_s * 1000:.0f} ms "
                    "(Redis slow or overloaded)"
                ) from None
    except ServiceTimeout:
        raise
    except Exception:
        _ADDRESSES.pop(settings, None)  # the embedded Redis may have moved: look it up again next time
        _CLIENTS.forget(address)
        raise
    plain = _plain_kinds()
    out: dict[str, dict[str, Any]] = {}
    for user, reply in zip(user_ids, replies, strict=True):
        row: dict[str, Any] = {}
        for name, kind, raw in zip(layout.names, layout.types, reply, strict=True):
            if not raw:
                row[name] = None
                continue
            value = Value.FromString(raw)
            which = value.WhichOneof("val")
            if kind in plain and which in _PLAIN_SCALARS:
                row[name] = getattr(value, which)
            elif kind in plain and which in _PLAIN_LISTS:
                row[name] = list(getattr(value, which).val)
            else:
                row[name] = feast_value_type_to_python_type(value, kind)
        out[user] = row
    return out
