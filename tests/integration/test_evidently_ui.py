"""`aisle monitor ui`: the real Evidently UI answers over HTTP, lists every concern's project with its
dashboard, is found (not started twice) by a second call, and leaves no process behind when stopped."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from aisle.app.evidently_ui import find_ui, start_ui, stop_ui
from aisle.app.jobs import monitoring as jobs
from aisle.core.endpoints import is_alive
from aisle.core.settings import load_settings
from monitoring.workspace import CONCERNS

pytestmark = pytest.mark.integration


def _get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=15) as response:
        return json.loads(response.read())


def test_ui_answers_lists_the_projects_and_stops_cleanly(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "aisle")
    info = jobs.ui(settings, {})
    try:
        assert info["started"] is True
        assert sorted(info["projects"]) == sorted(c.name for c in CONCERNS.values())
        projects = _get(f"{info['url']}/api/projects")
        assert isinstance(projects, list)
        quality = next(p for p in projects if p["name"] == CONCERNS["quality"].name)
        dashboard = _get(f"{info['url']}/api/v2/dashboards/{quality['id']}")
        assert isinstance(dashboard, dict)
        assert {t["title"] for t in dashboard["tabs"]} == {"Quality", "Offline vs online", "Exposures"}
        assert len(dashboard["panels"]) == len({p["id"] for p in dashboard["panels"]})  # no panel twice
        again = start_ui(settings)  # found, not started a second time
        assert again["started"] is False and again["pid"] == info["pid"]
    finally:
        stopped = stop_ui(settings)
    assert stopped["stopped"] is True
    assert not is_alive(info["pid"])
    assert find_ui(settings) is None
    assert stop_ui(settings)["stopped"] is False
