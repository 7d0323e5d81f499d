"""Serving's predict path for ``aisle recommend-batch``: the same served policy, rules and reasons.

``models.batch`` reads the shoppers' contexts from the lake and writes the CSV; this supplies the
function that answers each chunk, so a shopper gets the same list from the batch as from /recommend
in the same state (same item features: the online store's when it can be read, as the service does).
"""

from __future__ import annotations

import logging

from aisle.core.settings import Settings
from models import registry
from models.batch import Predict, PredictFactory
from models.context import PolicyQueries
from models.hybrid import HybridPolicy, Recommendation
from serving.items import catalog_titles, online_item_features
from serving.pipeline import Ask, recommend
from serving.policies import read_catalog, serve_hybrid
from serving.rules import load_rules, rules_path

log = logging.getLogger(__name__)


def batch_predictor(settings: Settings, alias: str = registry.CHAMPION) -> PredictFactory:
    """A ``models.batch`` predictor factory running serving's pipeline with the rules file in force."""
    rules = load_rules(rules_path(settings))

    def make(policy: HybridPolicy, version: str) -> Predict:
        try:
            features = online_item_features(settings, policy.item_ids.tolist())
        except Exception as exc:  # no online store: the item features the policy was trained with
            log.warning("item features not read from the online store (%s); using the policy's own", exc)
            features = None
        titles = catalog_titles(read_catalog(settings))
        served = serve_hybrid(
            alias, version, policy, None if features is None or features.empty else features, titles
        )

        def predict(
            queries: PolicyQueries, users: list[str], k: int, include_seen: bool
        ) -> list[Recommendation]:
            asks = [Ask(user, k) for user in users]
            answers = recommend(served, rules, queries, asks, include_seen=include_seen)
            return [Recommendation(a.item_ids, [p.score for p in a.items], a.source) for a in answers]

        return predict

    return make
