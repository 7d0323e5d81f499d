"""Point-in-time training sets from the offline store (DuckDB over the Parquet feature tables)."""

from __future__ import annotations

import logging
import warnings

import pandas as pd

from aisle.core.errors import BadInput
from aisle.core.settings import Settings
from feature_repo.store import get_store

log = logging.getLogger(__name__)


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
