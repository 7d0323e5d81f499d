"""Feature services: the named feature sets models train on and serving reads, so both ask for the same.

Feature names collide across views (``views_1d`` is both a user and an item feature), so every read of
a service uses full feature names: ``user_features__views_1d``, ``item_features__views_1d``.
"""

from __future__ import annotations

from typing import Final

from feast import FeatureService, FeatureView

from feature_repo.feature_views import ITEM_FEATURES, USER_FEATURES, USER_RECENT

RANKING: Final = "ranking"
RETRIEVAL: Final = "retrieval"


def feature_services(views: dict[str, FeatureView]) -> dict[str, FeatureService]:
    """Services over the given views (from ``feature_views(settings)``), keyed by name."""
    services = [
        FeatureService(
            name=RANKING,
            features=[views[USER_FEATURES], views[ITEM_FEATURES], views[USER_RECENT]],
            description="Wide & Deep ranking input: user x item snapshot features plus stream features.",
        ),
        FeatureService(
            name=RETRIEVAL,
            features=[views[USER_FEATURES], views[USER_RECENT]],
            description="Two-tower query tower input: user snapshot features plus stream features.",
        ),
    ]
    return {service.name: service for service in services}
