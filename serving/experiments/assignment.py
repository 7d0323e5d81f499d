"""Who sees which variant: a deterministic hash of salt and user id, computed in the service's process.

Two hashes per request, no I/O. The layer hash (keyed by the layer's name) places a shopper in one of
``BUCKETS`` buckets of the layer; each running experiment owns a disjoint bucket range claimed when it
started, so experiments in one layer never share a shopper. The experiment hash (keyed by its salt)
then picks the variant by the cumulative weights. Both depend only on stored values, so a restarted or
reloaded service, or another worker, puts every shopper in the same variant again.

Forced assignments (QA users) win over coverage and targeting. Targeting on new vs returning shoppers
is decided per request, so a new shopper who comes back later may leave such an experiment; that is
what targeting by it means.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from serving.experiments.spec import Targeting
from serving.experiments.store import BUCKETS, Experiment

_SCALE: Final = float(2**64)


def unit_hash(salt: str, user_id: str) -> float:
    """A uniform number in [0, 1) fixed by (salt, user): the same on every machine and every run."""
    digest = hashlib.blake2b(f"{salt}\x1f{user_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def bucket(layer: str, user_id: str) -> int:
    return int(unit_hash(f"layer:{layer}", user_id) * BUCKETS)


@dataclass(frozen=True)
class Assignment:
    """The variant a shopper gets, and what the service must serve for it."""

    experiment: str
    version: int
    variant: str
    alias: str | None
    strategy: str | None
    forced: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "experiment": self.experiment,
            "version": self.version,
            "variant": self.variant,
            "alias": self.alias,
            "strategy": self.strategy,
            "forced": self.forced,
        }


@dataclass(frozen=True)
class _Running:
    key: str
    version: int
    salt: str
    lo: int
    hi: int
    cumulative: tuple[float, ...]
    targeting: Targeting
    assignments: tuple[Assignment, ...]  # one per variant, in definition order

    def variant_for(self, user_id: str) -> Assignment:
        i = bisect.bisect_right(self.cumulative, unit_hash(self.salt, user_id))
        return self.assignments[min(i, len(self.assignments) - 1)]


def _running(exp: Experiment) -> _Running:
    cumulative: list[float] = []
    total = 0.0
    for v in exp.spec.variants:
        total += v.weight
        cumulative.append(total)
    cumulative[-1] = 1.0  # weights sum to 1 within tolerance; the last edge is exact
    return _Running(
        key=exp.key,
        version=exp.version,
        salt=exp.salt,
        lo=exp.bucket_lo if exp.bucket_lo is not None else 0,
        hi=exp.bucket_hi if exp.bucket_hi is not None else 0,
        cumulative=tuple(cumulative),
        targeting=exp.spec.targeting,
        assignments=tuple(
            Assignment(exp.key, exp.version, v.name, v.alias, v.strategy) for v in exp.spec.variants
        ),
    )


class Assigner:
    """An immutable snapshot of the running experiments; build a new one when the store changes."""

    def __init__(self, running: Iterable[Experiment]) -> None:
        sources = list(running)
        self.experiments = {e.key: _running(e) for e in sources}
        self._layers: dict[str, list[_Running]] = {}
        for source in sources:
            self._layers.setdefault(source.layer, []).append(self.experiments[source.key])
        for members in self._layers.values():
            members.sort(key=lambda e: e.lo)
        self._starts = {layer: [e.lo for e in members] for layer, members in self._layers.items()}
        self._forced: dict[str, Assignment] = {}
        for source in sources:  # started first wins; the store refuses a user forced twice anyway
            by_name = {a.variant: a for a in self.experiments[source.key].assignments}
            for user, name in source.spec.overrides.items():
                a = by_name[name]
                self._forced.setdefault(
                    user, Assignment(a.experiment, a.version, a.variant, a.alias, a.strategy, forced=True)
                )

    @property
    def aliases(self) -> set[str]:
        """Every model alias some running variant serves (the service keeps one policy loaded per alias)."""
        return {a.alias for e in self.experiments.values() for a in e.assignments if a.alias}

    def __len__(self) -> int:
        return len(self.experiments)

    def assign(
        self,
        user_id: str,
        *,
        device: str | None = None,
        country: str | None = None,
        returning: bool | None = None,
    ) -> Assignment | None:
        """The shopper's variant, or None when no running experiment takes them."""
        forced = self._forced.get(user_id)
        if forced is not None:
            return forced
        for layer, members in self._layers.items():
            b = bucket(layer, user_id)
            i = bisect.bisect_right(self._starts[layer], b) - 1
            if i < 0:
                continue
            exp = members[i]
            if b < exp.hi and exp.targeting.admits(device, country, returning):
                return exp.variant_for(user_id)
        return None

    def assign_in(self, key: str, user_id: str, **context: object) -> Assignment | None:
        """The shopper's variant in one experiment (None if that experiment does not take them)."""
        got = self.assign(user_id, **context)  # type: ignore[arg-type]
        return got if got is not None and got.experiment == key else None
