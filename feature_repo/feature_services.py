"""Feature services: the named feature sets models train on and serving reads, so both ask for the same.

``ranking`` is what the ranker joins per (user, item, time) row; it leaves out the ``user_recent`` view,
whose lists the ranker does not read and which would make every training row carry them. ``retrieval``
is a shopper's context as ``models.context.from_online`` reads it.

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
            features=[views[USER_FEATURES], views[ITEM_FEATURES]],
            description="Wide & Deep ranking input: user x item snapshot features.",
        ),
        FeatureService(
            name=RETRIEVAL,
            features=[views[USER_FEATURES], views[USER_RECENT]],
            description="A shopper's online context: user snapshot features plus the user_recent view.",
        ),
    ]
    return {service.name: service for service in services}
