"""Names of the data products DAGs hand to each other (Airflow Assets). Plain strings: no Airflow import,
so the project can refer to them without loading Airflow."""

from __future__ import annotations

from typing import Final

LAKE_ASSET: Final = ("aisle_event_lake", "aisle://lake/events")
FEATURES_ASSET: Final = ("aisle_features", "aisle://features/online")
