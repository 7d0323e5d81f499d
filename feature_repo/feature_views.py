"""Feature views: one per offline table, their feature fields derived from the table contract.

Deriving the Feast schema from ``feature_repo.tables`` (instead of restating it) means a column added to
the contract shows up here, and a type the views cannot represent fails at apply time, not in serving.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

import pyarrow as pa
from feast import Entity, FeatureView, Field
from feast.data_source import DataSource
from feast.types import Array, Bool, FeastType, Float64, Int64, String

from aisle.core.settings import Settings
from feature_repo import tables
from feature_repo.data_sources import TIMESTAMP_FIELD, batch_sources, user_recent_push
from feature_repo.entities import CATEGORY, ITEM, USER, entities

USER_FEATURES: Final = tables.USER_FEATURES
ITEM_FEATURES: Final = tables.ITEM_FEATURES
USER_CATEGORY_AFFINITY: Final = tables.USER_CATEGORY
ITEM_COOCCURRENCE: Final = tables.ITEM_COOCCURRENCE
USER_RECENT: Final = tables.USER_RECENT

SNAPSHOT_TTL: Final = timedelta(days=30)
# Built over the whole lake window and rebuilt on every feature build; 90 days keeps it served through
# a few missed builds without letting a long-dead table linger forever.
COOCCURRENCE_TTL: Final = timedelta(days=90)
# Recently viewed/carted items stay useful for a returning visitor; session counters carry session_id.
USER_RECENT_TTL: Final = timedelta(days=30)

# Columns that are keys, timestamps or partitioning, never features.
_NOT_FEATURES: Final = frozenset({TIMESTAMP_FIELD, "snapshot_date"})

_SCALARS: Final[dict[pa.DataType, FeastType]] = {
    pa.int64(): Int64,
    pa.float64(): Float64,
    pa.string(): String,
    pa.bool_(): Bool,
}


def feast_type(arrow_type: pa.DataType) -> FeastType:
    """The Feast type of a contract column; lists become ``Array`` of the element type."""
    if pa.types.is_list(arrow_type):
        return Array(feast_type(arrow_type.value_type))
    try:
        return _SCALARS[arrow_type]
    except KeyError:
        raise TypeError(f"contract type {arrow_type} has no Feast feature type mapping") from None


def schema_fields(schema: pa.Schema, join_keys: list[str]) -> list[Field]:
    """Entity columns first (so Feast knows their type), then every feature column of the contract."""
    by_name = {f.name: f for f in schema}
    keys = [Field(name=k, dtype=feast_type(by_name[k].type)) for k in join_keys]
    features = [
        Field(name=f.name, dtype=feast_type(f.type))
        for f in schema
        if f.name not in _NOT_FEATURES and f.name not in join_keys
    ]
    return keys + features


def _view(
    name: str,
    view_entities: list[Entity],
    schema: pa.Schema,
    source: DataSource,
    ttl: timedelta,
    description: str,
    **extra: Any,
) -> FeatureView:
    join_keys = [entity.join_key for entity in view_entities]
    return FeatureView(
        name=name,
        entities=view_entities,
        schema=schema_fields(schema, join_keys),
        source=source,
        ttl=ttl,
        online=True,
        description=description,
        **extra,
    )


def feature_views(settings: Settings) -> dict[str, FeatureView]:
    """All views, keyed by name; paths come from ``settings`` (nothing is read at import time)."""
    ents = entities()
    sources = batch_sources(settings)
    user, item, category = ents[USER], ents[ITEM], ents[CATEGORY]
    views = [
        _view(
            USER_FEATURES,
            [user],
            tables.USER_FEATURES_SCHEMA,
            sources[tables.USER_FEATURES],
            SNAPSHOT_TTL,
            "Per-user activity counts over 1/7/30 days, purchase recency, favourite category and brand.",
        ),
        _view(
            ITEM_FEATURES,
            [item],
            tables.ITEM_FEATURES_SCHEMA,
            sources[tables.ITEM_FEATURES],
            SNAPSHOT_TTL,
            "Per-item popularity over 1/7/30 days, conversion, trending score and catalog attributes.",
        ),
        _view(
            USER_CATEGORY_AFFINITY,
            [user, category],
            tables.USER_CATEGORY_SCHEMA,
            sources[tables.USER_CATEGORY],
            SNAPSHOT_TTL,
            "Share of a user's weighted events in each top-level category over 30 days.",
        ),
        _view(
            ITEM_COOCCURRENCE,
            [item],
            tables.ITEM_COOCCURRENCE_SCHEMA,
            sources[tables.ITEM_COOCCURRENCE],
            COOCCURRENCE_TTL,
            "Top-K bought-together and viewed-together items with scores (candidate generation).",
        ),
        _view(
            USER_RECENT,
            [user],
            tables.USER_RECENT_SCHEMA,
            user_recent_push(sources[tables.USER_RECENT]),
            USER_RECENT_TTL,
            "Stream features: last viewed/carted items and current-session counters, pushed online.",
        ),
    ]
    return {view.name: view for view in views}
