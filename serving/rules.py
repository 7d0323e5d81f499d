"""Business rules: what may be shown (stock, purchases, filters), what the shop wants pushed (boosts, pins)
and how varied a list must be (a per-category cap or MMR).

The shop edits the rules in one YAML file, ``$AISLE_HOME/serving/rules.yaml`` (see ``docs/serving.md``)::

    boosts:                       # multiply the ranker's score of matching items
      - {category: "Electronics", factor: 1.5}     # a category path and everything below it
      - {brand: "Acme", factor: 1.2}
      - {item_id: "i00042", factor: 3}
    pins:                         # put an item at a fixed 1-based position when it may be shown
      - {item_id: "i00007", position: 1, reason: "staff pick"}
    diversity:
      method: cap                 # cap | mmr | none
      max_per_category: 3         # cap: at most this many items of one category (leaf path)
      mmr_lambda: 0.7             # mmr: 1 = relevance only, 0 = variety only

A missing file means "no boosts, no pins, cap at 3". The service re-reads the file when it changes; a
broken file is reported in one sentence and the rules in force stay in force. Hard rules (never out of
stock, never already purchased, the request's filters) hold whatever the file says, pins included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from aisle.core.errors import BadInput
from aisle.core.settings import Settings
from serving.items import ItemTable

RULES_FILE: Final = "rules.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Boost(_Strict):
    category: str | None = None
    brand: str | None = None
    item_id: str | None = None
    factor: float = Field(gt=0, le=100)

    @model_validator(mode="after")
    def _one_target(self) -> Boost:
        targets = [n for n in ("category", "brand", "item_id") if getattr(self, n)]
        if len(targets) != 1:
            raise ValueError("a boost names exactly one of category, brand or item_id")
        return self


class Pin(_Strict):
    item_id: str = Field(min_length=1)
    position: int = Field(ge=1, le=100)
    reason: str = Field("featured by the shop", min_length=1, max_length=120)


class Diversity(_Strict):
    method: Literal["cap", "mmr", "none"] = "cap"
    max_per_category: int = Field(3, ge=1, le=100)
    mmr_lambda: float = Field(0.7, ge=0, le=1)


class Rules(_Strict):
    boosts: tuple[Boost, ...] = ()
    pins: tuple[Pin, ...] = ()
    diversity: Diversity = Field(default_factory=lambda: Diversity.model_validate({}))

    @model_validator(mode="after")
    def _distinct_pins(self) -> Rules:
        positions = [p.position for p in self.pins]
        if len(set(positions)) != len(positions):
            raise ValueError("two pins claim the same position")
        return self


DEFAULT_RULES: Final = Rules.model_validate({})


def rules_path(settings: Settings) -> Path:
    return settings.paths.serving / RULES_FILE


def load_rules(path: Path) -> Rules:
    """The rules in ``path`` (defaults when it does not exist); BadInput naming the problem otherwise."""
    import yaml

    if not path.exists():
        return DEFAULT_RULES
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise BadInput(f"rules file {path} is not readable YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise BadInput(f"rules file {path} must hold a mapping with boosts, pins and diversity")
    try:
        return Rules.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the file"
        raise BadInput(f"rules file {path}: {where}: {first['msg']}") from None


# ----------------------------------------------------------------------------- hard rules


@dataclass(frozen=True)
class Wishes:
    """The request's filters, normalised for matching (see ``serving.schemas.Filters``)."""

    categories: tuple[str, ...] = ()
    price_min: float | None = None
    price_max: float | None = None
    exclude_items: frozenset[str] = field(default_factory=frozenset)

    @property
    def narrows(self) -> bool:
        """Whether anything but explicit exclusions limits the items."""
        return bool(self.categories) or self.price_min is not None or self.price_max is not None


NO_WISHES: Final = Wishes()


def in_categories(paths: np.ndarray, categories: Sequence[str]) -> np.ndarray:
    """Whether each (lower-cased) category path is one of ``categories`` or below one of them."""
    wanted = [c.strip().lower() for c in categories if c.strip()]
    if not wanted:
        return np.ones(len(paths), dtype=bool)
    return np.fromiter(
        (any(p == w or p.startswith(w + ">") for w in wanted) for p in paths), dtype=bool, count=len(paths)
    )


def allowed(items: ItemTable, rows: np.ndarray, wishes: Wishes) -> np.ndarray:
    """Which candidates (rows of ``items``, -1 = unknown item) pass the request's filters and stock.

    An item the table does not know has no price or category, so it fails a price or category filter;
    with no such filter it passes (exclusions are applied before retrieval).
    """
    known = rows >= 0
    safe = np.where(known, rows, 0)
    ok = np.where(known, items.in_stock[safe], True) if len(items) else np.ones(len(rows), dtype=bool)
    if wishes.categories:
        paths = items.category[safe] if len(items) else np.array([""] * len(rows), dtype=object)
        ok &= known & in_categories(paths, wishes.categories)
    if wishes.price_min is not None or wishes.price_max is not None:
        price = items.price[safe] if len(items) else np.full(len(rows), np.nan)
        lo = -np.inf if wishes.price_min is None else wishes.price_min
        hi = np.inf if wishes.price_max is None else wishes.price_max
        with np.errstate(invalid="ignore"):
            ok &= known & (price >= lo) & (price <= hi)
    return ok


# ----------------------------------------------------------------------------- soft rules


def boost(scores: np.ndarray, rows: np.ndarray, items: ItemTable, boosts: Sequence[Boost]) -> np.ndarray:
    """Scores with every matching boost applied; a factor above 1 always moves an item up (a negative
    score is divided rather than multiplied), so a boost never turns into a penalty."""
    out = np.asarray(scores, dtype=np.float64).copy()
    if not boosts or not len(rows):
        return out
    known = rows >= 0
    safe = np.where(known, rows, 0)
    factor = np.ones(len(rows))
    for b in boosts:
        if b.item_id is not None:
            hit = items.ids[safe] == b.item_id
        elif b.brand is not None:
            hit = np.char.lower(items.brand[safe].astype(str)) == b.brand.lower()
        else:
            hit = in_categories(items.category[safe], [b.category or ""])
        factor = np.where(known & hit, factor * b.factor, factor)
    return np.where(out >= 0, out * factor, out / factor)


def diversify(
    order: np.ndarray,
    rows: np.ndarray,
    relevance: np.ndarray,
    k: int,
    items: ItemTable,
    diversity: Diversity,
    embeddings: np.ndarray | None,
) -> np.ndarray:
    """Pick ``k`` positions of ``order`` (candidate indices, best first) for a varied list.

    ``cap``: at most ``max_per_category`` per leaf category while enough other items remain, then the
    best of the rest (a soft cap never shortens a list). ``mmr``: maximal marginal relevance over the
    item embeddings (cosine), falling back to the cap when the policy has no embeddings.
    """
    order = np.asarray(order, dtype=np.int64)
    if k <= 0:
        return order[:0]
    if diversity.method == "none" or len(order) <= 1:
        return order[:k]
    if diversity.method == "mmr" and embeddings is not None:
        return _mmr(order, rows, relevance, k, embeddings, diversity.mmr_lambda)
    chosen: list[int] = []
    skipped: list[int] = []
    per: dict[str, int] = {}
    for cand in order.tolist():
        row = rows[cand]
        key = items.category[row] if row >= 0 and len(items) else f"?{cand}"
        if per.get(key, 0) < diversity.max_per_category:
            per[key] = per.get(key, 0) + 1
            chosen.append(cand)
            if len(chosen) == k:
                break
        else:
            skipped.append(cand)
    chosen.extend(skipped[: k - len(chosen)])
    return np.asarray(chosen, dtype=np.int64)


def _mmr(
    order: np.ndarray, rows: np.ndarray, relevance: np.ndarray, k: int, embeddings: np.ndarray, lam: float
) -> np.ndarray:
    pool = order[: max(k * 4, 50)]
    vectors = np.zeros((len(pool), embeddings.shape[1]), dtype=np.float32)
    known = rows[pool] >= 0
    vectors[known] = embeddings[rows[pool][known]]
    rel = np.asarray(relevance, dtype=np.float64)[pool]
    span = rel.max() - rel.min()
    rel = (rel - rel.min()) / span if span > 0 else np.ones(len(pool))
    sims = vectors @ vectors.T
    picked: list[int] = []
    closest = np.full(len(pool), -np.inf)
    free = np.ones(len(pool), dtype=bool)
    for _ in range(min(k, len(pool))):
        penalty = np.where(np.isfinite(closest), closest, 0.0)
        value = np.where(free, lam * rel - (1 - lam) * penalty, -np.inf)
        best = int(np.argmax(value))  # ties: the earlier (better ranked) candidate
        picked.append(best)
        free[best] = False
        closest = np.maximum(closest, sims[best])
    return pool[np.asarray(picked, dtype=np.int64)]
