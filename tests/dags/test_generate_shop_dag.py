from __future__ import annotations

import pyarrow.parquet as pq

from aisle.app.dag_runner import execute_dag
from aisle.core.settings import Settings


def test_generate_shop_runs_through_dag_test(dag_settings: Settings) -> None:
    result = execute_dag(dag_settings, "generate_shop", {"users": 40, "items": 25, "days": 3, "seed": 5})
    assert result["state"] == "success"
    shop = dag_settings.paths.raw / "shop"
    assert pq.read_table(shop / "users.parquet").num_rows == 40
    assert pq.read_table(shop / "catalog.parquet").num_rows == 25
    assert pq.read_table(shop / "events.parquet").num_rows > 0
