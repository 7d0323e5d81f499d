"""deploy_service through Airflow's dag.test() against the running service: smoke test, then reload."""

from __future__ import annotations

from typing import Any

import pytest

from aisle.app.dag_runner import execute_dag
from aisle.core.errors import AisleError
from aisle.core.settings import Settings, get_settings, load_settings
from models import registry
from serving.client import call
from tests.integration.serving_home import TOKEN


@pytest.mark.integration
@pytest.mark.slow
def test_deploy_service_smoke_tests_the_champion_then_reloads_it(
    airflow_settings: Settings, serving_home: Settings, serving_service: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DAG tasks read settings from the environment: point them at the serving home and service
    monkeypatch.setenv("AISLE_HOME", str(serving_home.paths.home))
    monkeypatch.setenv("AISLE_SERVING_URL", serving_service.url)
    monkeypatch.setenv("AISLE_ADMIN_TOKEN", TOKEN)
    get_settings.cache_clear()
    try:
        settings = load_settings()
        champion = registry.alias_version(settings, registry.CHAMPION)
        before = call(serving_service.url, "/admin/status", token=TOKEN).body["policies"]["champion"]
        result = execute_dag(settings, "deploy_service", {"users": 5})
        assert result["state"] == "success"
        after = call(serving_service.url, "/admin/status", token=TOKEN).body["policies"]["champion"]
        assert after["version"] == champion and after["loaded_at"] > before["loaded_at"]  # reloaded
        with pytest.raises(AisleError, match="deploy_service finished in state failed"):
            execute_dag(settings, "deploy_service", {"version": "999"})  # no such version: smoke fails
        assert call(serving_service.url, "/admin/status", token=TOKEN).body["policies"]["champion"] == after
    finally:
        get_settings.cache_clear()
