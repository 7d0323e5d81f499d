"""Which policy answers a request: the champion, or the variant the shopper is assigned to.

The service's runtime asks :meth:`VariantRouter.route` after reading the shopper's online context
(memory only: the assignment snapshot, the loaded policies). A variant serving an alias gets that
alias's loaded policy; a strategy variant gets the champion's trending or popularity list; a variant
whose policy is not loaded (its load failed) is answered by the champion and marked ``error``, so the
experiment's error-rate guardrail sees it rather than the shopper.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aisle.core.settings import Settings
from serving.experiments.assignment import Assignment
from serving.experiments.live import LiveExperiments
from serving.experiments.strategies import StrategyCache
from serving.policies import PolicyHolder, ServedPolicy

log = logging.getLogger("bentoml.aisle.experiments")


@dataclass(frozen=True)
class Route:
    served: ServedPolicy
    variant: str
    assignment: Assignment | None = None
    error: bool = False  # the variant's own policy could not answer; the champion did


class VariantRouter:
    def __init__(self, settings: Settings) -> None:
        self.live = LiveExperiments(settings)
        self.strategies = StrategyCache()

    def refresh(self) -> bool:
        return self.live.refresh()

    @property
    def aliases(self) -> set[str]:
        """Model aliases the running experiments serve (one loaded policy each)."""
        return self.live.aliases

    def route(
        self,
        policies: PolicyHolder,
        champion: ServedPolicy,
        user_id: str,
        *,
        device: str | None,
        country: str | None,
        returning: bool | None,
    ) -> Route:
        if not len(self.live.assigner):
            return Route(champion, champion.alias)
        got = self.live.assigner.assign(user_id, device=device, country=country, returning=returning)
        if got is None:
            return Route(champion, champion.alias)
        if got.strategy is not None:
            return Route(self.strategies.get(champion, got.strategy), got.variant, got)
        served = policies.get(got.alias or "")
        if served is None:
            return Route(champion, got.variant, got, error=True)
        return Route(served, got.variant, got)

    def in_use(self, base: Sequence[str]) -> list[str]:
        """The base aliases, then every alias a running experiment serves."""
        return [*base, *sorted(self.aliases - set(base))]

    def sync(
        self, policies: PolicyHolder, load: Callable[[str], ServedPolicy], base: Sequence[str]
    ) -> dict[str, str]:
        """Load what running experiments serve and is not loaded; forget what none serves any more.

        A failed load leaves that variant answered by the champion (its exposures say ``error``).
        """
        done: dict[str, str] = {}
        wanted = self.in_use(base)
        for alias in wanted:
            if policies.get(alias) is None:
                try:
                    load(alias)
                    done[alias] = "served by an experiment"
                except Exception as exc:
                    log.error("policy %r for a running experiment did not load: %s", alias, exc)
        for alias in set(policies.aliases()) - set(wanted):
            policies.drop(alias)
            done[alias] = "no experiment serves it any more"
        return done

    def status(self) -> dict[str, Any]:
        return {
            "running": [f"{e.key} v{e.version}" for e in self.live.running],
            "aliases": sorted(self.aliases),
            "store_error": self.live.last_error,
        }

    def close(self) -> None:
        self.live.close()
