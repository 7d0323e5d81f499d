"""The policies the service answers with, held in memory and keyed by alias.

A :class:`ServedPolicy` is everything one answer needs that does not depend on the shopper: the
registered hybrid policy (two-tower + faiss index, co-occurrence, trending, the Wide & Deep ranker), the
item table the rules read, normalised item embeddings for MMR and /similar, and the shop-wide order used
for cold start and fill-in. It is immutable: a reload builds a new one completely and then swaps one
reference, so a request that started on the old policy finishes on it.

Without a registered champion the service still answers, from item popularity in the event lake
(``version`` "popularity", every answer ``degraded``); it moves to the champion as soon as one exists.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import numpy as np
import pandas as pd
import scipy.sparse as sp

from aisle.core.settings import Settings
from models import registry
from models.hybrid import HybridPolicy, Recommendation, ranked_order
from serving.items import BRAND, CATEGORY, IN_STOCK, PRICE, TOP_CATEGORY, ItemTable, catalog_titles

log = logging.getLogger("bentoml.aisle.policies")

POPULARITY: Final = "popularity"
#: Items counted as "trending" when a reason is chosen.
TRENDING_TOP: Final = 50


class Policy(Protocol):
    def recommend(
        self, queries: pd.DataFrame, k: int, seen: Sequence[set[str]] | None = None
    ) -> list[Recommendation]: ...


class PopularityPolicy:
    """The same list for everyone, minus what each shopper must not see: the answer of last resort."""

    def __init__(self, item_ids: np.ndarray, scores: np.ndarray) -> None:
        self.item_ids = np.asarray(item_ids, dtype=object).astype(str)
        self.scores = np.asarray(scores, dtype=np.float64)
        self.order = ranked_order(self.item_ids, self.scores)

    def recommend(
        self, queries: pd.DataFrame, k: int, seen: Sequence[set[str]] | None = None
    ) -> list[Recommendation]:
        out = []
        for r in range(len(queries)):
            banned = seen[r] if seen is not None else set()
            items: list[str] = []
            scores: list[float] = []
            for idx in self.order:
                item = str(self.item_ids[idx])
                if item in banned:
                    continue
                items.append(item)
                scores.append(float(self.scores[idx]))
                if len(items) == k:
                    break
            out.append(Recommendation(items, scores, POPULARITY))
        return out


@dataclass(frozen=True)
class ServedPolicy:
    """One loaded policy and the per-item state its answers need (rows aligned with ``items``)."""

    alias: str
    version: str  # registered version, or "popularity"
    policy: Policy
    items: ItemTable
    shop_order: np.ndarray  # item rows, best first: cold start and fill-in
    shop_scores: np.ndarray  # score per item row
    shop_kind: str  # "trending" or "popular", for reasons
    trending_rows: frozenset[int]
    cooccurrence: sp.csr_matrix | None
    embeddings: np.ndarray | None  # unit-length rows, zeros for items without an embedding
    recent_limit: int
    degraded: bool
    trained: HybridPolicy | None = None  # as loaded, before fresher item features were laid over it
    loaded_at: float = field(default_factory=time.time)

    @property
    def fallback(self) -> bool:
        return self.version == POPULARITY


def serve_hybrid(
    alias: str,
    version: str,
    policy: HybridPolicy,
    features: pd.DataFrame | None = None,
    titles: dict[str, str] | None = None,
) -> ServedPolicy:
    """Wrap a loaded hybrid policy; ``features`` (item id index, item feature columns) replaces the item
    features it was trained with, for both ranking and rules (fresher stock and prices). The policy's two
    TensorFlow models answer through their numpy copies (:func:`numpy_models`)."""
    policy = numpy_models(policy)
    trained = policy
    if features is not None and len(features):
        policy = copy.copy(policy)  # the loaded one stays as trained; only the copy sees new features
        merged = policy.item_features.copy()
        merged.index = merged.index.astype(str)
        fresh = features.copy()
        fresh.index = fresh.index.astype(str)
        merged = fresh.combine_first(merged)
        policy.item_features = merged
    items = ItemTable.build(policy.item_ids.tolist(), policy.item_features, titles)
    cold = str(policy.config.cold_start)
    scores = np.asarray(getattr(policy, cold), dtype=np.float64)
    tower_ids = policy.retriever.item_ids
    tower_ids = tower_ids() if callable(tower_ids) else tower_ids
    tower_pos = pd.Index(np.asarray(tower_ids).astype(str)).get_indexer(items.ids)
    raw = np.asarray(policy.retriever.item_embeddings(), dtype=np.float32)
    embeddings = np.zeros((len(items), raw.shape[1]), dtype=np.float32)
    embeddings[tower_pos >= 0] = raw[tower_pos[tower_pos >= 0]]
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    embeddings = np.divide(embeddings, norms, out=np.zeros_like(embeddings), where=norms > 0)
    trending = ranked_order(items.ids, np.asarray(policy.trending, dtype=np.float64))[:TRENDING_TOP]
    started = time.perf_counter()
    if policy.numpy_path() is not None:  # compiled here, at load, not in the first request after it
        log.info("policy compiled for one-shopper serving in %.2f s", time.perf_counter() - started)
    return ServedPolicy(
        alias=alias,
        version=version,
        policy=policy,
        items=items,
        shop_order=ranked_order(items.ids, scores),
        shop_scores=policy.cold_start_scores(),  # the ranker's scale, as every other list
        shop_kind="trending" if cold == "trending" else "popular",
        trending_rows=frozenset(int(r) for r in trending),
        cooccurrence=policy.cooccurrence,
        embeddings=embeddings,
        recent_limit=int(policy.config.recent_items),
        degraded=False,
        trained=trained,
    )


def numpy_models(policy: HybridPolicy) -> HybridPolicy:
    """The policy with the user tower, the ranker and the sequence model run in numpy instead of one
    TensorFlow signature call each per request: copies read once from the loaded SavedModels and checked
    against them (``models.two_tower.numpy_tower``, ``models.wide_deep.numpy_scorer``,
    ``models.sasrec.numpy_encoder``). A part whose copy cannot be made or disagrees stays on TensorFlow
    (and the log says so); a policy already converted is returned."""
    from models.sasrec.export import SASRecArtifact
    from models.sasrec.numpy_encoder import numpy_sasrec
    from models.two_tower.export import TwoTowerArtifact
    from models.two_tower.numpy_tower import numpy_tower
    from models.wide_deep.export import WideDeepArtifact
    from models.wide_deep.numpy_scorer import numpy_ranker

    started = time.perf_counter()
    tower = numpy_tower(policy.retriever) if isinstance(policy.retriever, TwoTowerArtifact) else None
    ranker = numpy_ranker(policy.ranker) if isinstance(policy.ranker, WideDeepArtifact) else None
    sequence = numpy_sasrec(policy.sequence) if isinstance(policy.sequence, SASRecArtifact) else None
    if tower is None and ranker is None and sequence is None:
        return policy
    log.info(
        "numpy copies: user tower %s, ranker %s, sequence model %s (%.2f s)",
        "yes" if tower is not None else "no",
        "yes" if ranker is not None else "no",
        "yes" if sequence is not None else ("no" if policy.sequence is not None else "none in this policy"),
        time.perf_counter() - started,
    )
    return policy.with_parts(tower, ranker, sequence)


def serve_popularity(alias: str, events: pd.DataFrame | None, catalog: pd.DataFrame | None) -> ServedPolicy:
    """The fallback: item popularity (event-weighted counts) over the lake, items from its catalog."""
    from models.data import event_weights

    ids: list[str] = []
    scores = np.zeros(0)
    if events is not None and len(events):
        weights = pd.Series(event_weights(events), index=events.index)  # ratings count by their stars
        counts = weights.groupby(events["item_id"].astype(str)).sum()
        ids, scores = counts.index.tolist(), counts.to_numpy(dtype=np.float64)
    features = None
    if catalog is not None and len(catalog):
        known = set(ids)
        extra = [i for i in catalog["item_id"].astype(str) if i not in known]
        ids, scores = ids + extra, np.concatenate([scores, np.zeros(len(extra))])
        features = _catalog_features(catalog)
    items = ItemTable.build(ids, features, catalog_titles(catalog))
    policy = PopularityPolicy(items.ids, scores)
    return ServedPolicy(
        alias=alias,
        version=POPULARITY,
        policy=policy,
        items=items,
        shop_order=policy.order,
        shop_scores=policy.scores,
        shop_kind="popular",
        trending_rows=frozenset(),
        cooccurrence=None,
        embeddings=None,
        recent_limit=0,
        degraded=True,
    )


def _catalog_features(catalog: pd.DataFrame) -> pd.DataFrame:
    """Catalog columns under the item feature names the item table reads."""
    frame = pd.DataFrame(index=pd.Index(catalog["item_id"].astype(str), name="item_id"))
    if "category" in catalog:
        frame[CATEGORY] = catalog["category"].to_numpy()
        frame[TOP_CATEGORY] = catalog["category"].astype("string").str.split(">").str[0].to_numpy()
    for source, target in (("brand", BRAND), ("price", PRICE), ("in_stock", IN_STOCK)):
        if source in catalog:
            frame[target] = catalog[source].to_numpy()
    return frame


# ----------------------------------------------------------------------------- loading


def read_catalog(settings: Settings) -> pd.DataFrame | None:
    """The lake's catalog with titles (None when the lake holds none)."""
    from ingestion.lake import EventLake

    try:
        table = EventLake(settings.paths.lake).read_catalog()
    except OSError:
        return None
    return None if table is None or table.num_rows == 0 else table.to_pandas()


FeaturesFor = Callable[[list[str]], "pd.DataFrame | None"]


def load_served(
    settings: Settings, alias: str, version: str | None = None, features_for: FeaturesFor | None = None
) -> ServedPolicy:
    """Load ``alias`` (or ``version``) from the MLflow registry; popularity when nothing is registered.

    ``features_for(item_ids)`` supplies fresher item features than the policy was trained with (None:
    keep its own). Raises BadInput for a version that does not exist (a caller asked for it by name).
    """
    chosen = version or registry.alias_version(settings, alias)
    catalog = read_catalog(settings)
    if chosen is None:
        log.warning("no %s under alias %r: answering from popularity", registry.REGISTERED_MODEL, alias)
        return serve_popularity(alias, _lake_events(settings), catalog)
    path, chosen = registry.download_policy(settings, alias=alias, version=chosen)
    started = time.perf_counter()
    policy = HybridPolicy.load(path)
    features = features_for(policy.item_ids.tolist()) if features_for is not None else None
    served = serve_hybrid(alias, chosen, policy, features, catalog_titles(catalog))
    log.info("loaded v%s as %r in %.1f s", chosen, alias, time.perf_counter() - started)
    return served


def with_features(served: ServedPolicy, features: pd.DataFrame | None) -> ServedPolicy:
    """The same trained policy with other item features (a new materialization): no model reload."""
    if served.trained is None:
        return served
    return serve_hybrid(served.alias, served.version, served.trained, features, dict(served.items.titles))


def _lake_events(settings: Settings) -> pd.DataFrame | None:
    from aisle.core.errors import BadInput
    from models.data import load_events

    try:
        return load_events(settings)
    except BadInput:
        return None


class PolicyHolder:
    """The served policies by alias. Reads are lock-free (one dict lookup of an immutable object);
    loads are serialised so two reloads of one alias never race."""

    def __init__(self) -> None:
        self._served: dict[str, ServedPolicy] = {}
        self._lock = threading.Lock()

    def get(self, alias: str = registry.CHAMPION) -> ServedPolicy | None:
        return self._served.get(alias)

    def aliases(self) -> list[str]:
        return sorted(self._served)

    def put(self, served: ServedPolicy) -> ServedPolicy:
        with self._lock:
            self._served = {**self._served, served.alias: served}
        return served

    def drop(self, alias: str) -> None:
        """Forget a policy no one asks for any more (an experiment that served it stopped)."""
        with self._lock:
            self._served = {k: v for k, v in self._served.items() if k != alias}

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {
            alias: {
                "version": s.version,
                "degraded": s.degraded,
                "items": len(s.items),
                "loaded_at": s.loaded_at,
            }
            for alias, s in sorted(self._served.items())
        }
