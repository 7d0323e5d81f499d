"""Strategy variants: what an experiment's ``strategy: trending | popularity`` serves.

The champion policy's own shop-wide score vector (the trending scores with their half-life, or the
all-time popularity it was trained with), the same for every shopper, through the same business rules,
filters and diversity as every other answer: an honest baseline to test a personal policy against.
Built from the served champion (same version, same item table), so a champion reload brings a fresh one.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from serving.policies import PopularityPolicy, ServedPolicy

PREFIX = "strategy:"


def strategy_policy(champion: ServedPolicy, strategy: str) -> ServedPolicy:
    """The champion's ``strategy`` vector as a policy (the fallback's popularity when it has none)."""
    trained = champion.trained
    if trained is None:  # no registered champion: the lake's popularity is all there is
        return replace(champion, alias=PREFIX + strategy)
    scores = np.asarray(getattr(trained, strategy), dtype=np.float64)
    policy = PopularityPolicy(champion.items.ids, scores)
    return replace(
        champion,
        alias=PREFIX + strategy,
        policy=policy,
        shop_order=policy.order,
        shop_scores=policy.scores,
        shop_kind="trending" if strategy == "trending" else "popular",
    )


class StrategyCache:
    """One derived policy per strategy, rebuilt when the champion object changes (a reload)."""

    def __init__(self) -> None:
        self._built: dict[str, tuple[ServedPolicy, ServedPolicy]] = {}

    def get(self, champion: ServedPolicy, strategy: str) -> ServedPolicy:
        found = self._built.get(strategy)
        if found is not None and found[0] is champion:
            return found[1]
        derived = strategy_policy(champion, strategy)
        self._built = {**self._built, strategy: (champion, derived)}
        return derived
