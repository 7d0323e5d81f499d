"""Deploy a new champion to the running recommendation service, after proving it on real shoppers.

Scheduled on the `aisle_champion` Asset, which `train_models` publishes only after the gate promoted a
new version. With no service answering there, both tasks are skipped (a service started later loads
the champion itself). `smoke_test` asks the running service (`AISLE_SERVING_URL`, admin token
`AISLE_ADMIN_TOKEN`) to load that version beside the one it serves and answer recently active shoppers
and an unknown one with it: every list must obey every hard rule (exactly k, no duplicates, nothing
purchased or out of stock, a reason per item). Only then `reload` swaps it in and probes /recommend until
the new version answers. The work lives in `aisle.app.jobs.serve`.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import Asset, Param, dag, task

from aisle.core.assets import CHAMPION_ASSET

CHAMPION = Asset(name=CHAMPION_ASSET[0], uri=CHAMPION_ASSET[1])


@dag(
    dag_id="deploy_service",
    schedule=[CHAMPION],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["aisle", "serving"],
    default_args={"retries": 1, "retry_delay": pendulum.duration(seconds=30)},
    params={
        "version": Param(
            None, type=["null", "string"], description="Version to deploy (default: the champion)"
        ),
        "users": Param(20, type="integer", minimum=0, maximum=100, description="Shoppers in the smoke test"),
        "url": Param(None, type=["null", "string"], description="Service URL (default: AISLE_SERVING_URL)"),
    },
    doc_md=__doc__,
)
def deploy_service() -> None:
    @task
    def smoke_test(params: dict[str, Any] | None = None) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowSkipException

        from aisle.app.jobs import serve
        from aisle.core.settings import get_settings

        result = serve.smoke(get_settings(), dict(params or {}))
        if result.get("skipped"):  # no service running: nothing to deploy to, not a failure
            raise AirflowSkipException(result["reason"])
        return result

    @task
    def reload(smoke: dict[str, Any], params: dict[str, Any] | None = None) -> dict[str, Any]:
        from aisle.app.jobs import serve
        from aisle.core.settings import get_settings

        return {
            "smoke": smoke,
            **serve.reload(get_settings(), {**dict(params or {}), "version": smoke["version"]}),
        }

    reload(smoke_test())  # type: ignore[arg-type]  # XComArgs resolve at run time


deploy_service()
