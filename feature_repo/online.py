"""The online store's two directions: the stream pushes the ``user_recent`` view, readers read rows.

Every read here has a bounded wait: Redis commands time out (``config.SOCKET_TIMEOUT_S``), and
:func:`online_users`, the request-path read (straight from Redis, ``online_direct``), takes its own
``timeout_s`` and raises ServiceTimeout when Redis is too slow, so a caller never hangs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from aisle.core.errors import BadInput
from aisle.core.settings import Settings
from feature_repo.store import get_store, lookups, redis_errors

if TYPE_CHECKING:
    from feast import FeatureStore


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

    with redis_errors(settings, "pushing stream features"):
        store.push(USER_RECENT_PUSH, frame, to=PushMode.ONLINE)


def _read_path_lookups(settings: Settings, store: FeatureStore) -> tuple[Any, list[str], list[str]]:
    """The ``retrieval`` service, the item feature refs and the user_recent refs, looked up once per
    cached store."""
    from feature_repo.feature_services import RETRIEVAL
    from feature_repo.feature_views import ITEM_FEATURES, USER_RECENT

    found = lookups(settings, store)
    if "service" not in found:
        found["service"] = store.get_feature_service(RETRIEVAL)
        view = store.get_feature_view(ITEM_FEATURES)
        found["item_refs"] = [f"{ITEM_FEATURES}:{f.name}" for f in view.features]
        recent = store.get_feature_view(USER_RECENT)
        found["recent_refs"] = [f"{USER_RECENT}:{f.name}" for f in recent.features]
    return found["service"], found["item_refs"], found["recent_refs"]


def online_features(settings: Settings, user_id: str, item_ids: list[str] | None = None) -> dict[str, Any]:
    """Latest online features of one user (the ``retrieval`` service) and optionally of items.

    Returns ``{"user": {name: value}, "items": {item_id: {name: value}}}`` with full feature names;
    a value is None where Redis holds nothing. One round trip per entity kind.
    """
    store = get_store(settings)
    service, item_refs, _ = _read_path_lookups(settings, store)
    with redis_errors(settings, "an online feature read"):
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
    with redis_errors(settings, "reading the stream features"):
        columns = store.get_online_features(
            features=refs, entity_rows=[{"user_id": u} for u in user_ids]
        ).to_dict()
    return _rows(columns, "user_id")


def online_users(
    settings: Settings, user_ids: list[str], timeout_s: float | None = None
) -> dict[str, dict[str, Any]]:
    """The ``retrieval`` service (user features and the user_recent view) of many users, full names.

    Read straight from Redis (``feature_repo.online_direct``: one pipelined round trip, the same values
    as :func:`feast_online_users`); every socket operation waits at most ``timeout_s`` (default the
    store's socket timeout), so a caller on a request path never hangs: a slow Redis raises
    ServiceTimeout, a dead one ServiceUnavailable.
    """
    from feature_repo.config import SOCKET_TIMEOUT_S
    from feature_repo.online_direct import direct_online_users

    return direct_online_users(settings, user_ids, SOCKET_TIMEOUT_S if timeout_s is None else timeout_s)


def feast_online_users(settings: Settings, user_ids: list[str]) -> dict[str, dict[str, Any]]:
    """:func:`online_users` through Feast's SDK (``get_online_features`` of the ``retrieval`` service):
    the reference the direct read is tested against."""
    if not user_ids:
        return {}
    store = get_store(settings)
    service, _, _ = _read_path_lookups(settings, store)
    with redis_errors(settings, "an online feature read"):
        columns = store.get_online_features(
            features=service, entity_rows=[{"user_id": u} for u in user_ids], full_feature_names=True
        ).to_dict()
    return _rows(columns, "user_id")
