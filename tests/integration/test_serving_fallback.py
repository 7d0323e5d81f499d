"""Without a registered champion the service still answers: popularity over the lake, marked degraded."""

from __future__ import annotations

import pytest

from aisle.app.jobs import ingest, shop
from aisle.core.settings import Settings
from serving.runtime import Runtime
from serving.schemas import RecommendRequest


@pytest.mark.integration
def test_no_champion_answers_from_popularity_marked_degraded(embedded_settings: Settings) -> None:
    settings = embedded_settings
    shop.generate(settings, {"users": 300, "items": 80, "days": 10, "seed": 3})
    ingest.batch(settings, {"sources": [str(settings.paths.raw / "shop")]})
    runtime = Runtime(settings)
    runtime.start(background=False)  # no Redis either: the context read degrades too, and says so
    try:
        served = runtime.served()
        assert served.fallback and served.degraded and len(served.items) == 80
        response, degraded = runtime.recommend(RecommendRequest.model_validate({"user_id": "u00001", "k": 7}))
        assert response.model_version == "popularity" and response.degraded
        assert degraded.cause == "no_champion"
        assert len(response.items) == 7 and len({i.item_id for i in response.items}) == 7
        assert all(i.reason.startswith("popular") for i in response.items)
        assert runtime.refresh() == {} and runtime.served().fallback  # still nothing registered
        assert not runtime.ready()  # no Redis reachable: not ready, though it answers
    finally:
        runtime.stop()
