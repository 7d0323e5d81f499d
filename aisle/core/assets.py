"""Names of the data products DAGs hand to each other (Airflow Assets). Plain strings: no Airflow import,
so the project can refer to them without loading Airflow.

The loop: new event files (`aisle_raw_events`, from `generate_shop` or posted through the REST API by
whatever drops files) → `ingest_events` → `aisle_event_lake` (also posted by the supervised stream
ingester) → `build_features` → `aisle_features` → `train_models` → `aisle_champion` (only when the gate
promoted a new champion) → `deploy_service`.
"""

from __future__ import annotations

from typing import Final

RAW_EVENTS_ASSET: Final = ("aisle_raw_events", "aisle://raw/events")
LAKE_ASSET: Final = ("aisle_event_lake", "aisle://lake/events")
FEATURES_ASSET: Final = ("aisle_features", "aisle://features/online")
#: Published by `train_models` after a promotion; its extra holds ``version`` and ``run_key``. The
#: serving DAG (`deploy_service`) schedules on it.
CHAMPION_ASSET: Final = ("aisle_champion", "aisle://models/champion")
