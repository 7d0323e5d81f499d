"""The one place the hybrid policy is assembled from fitted parts, in memory or from a run's artifacts.

Both the ranker's stage-1 candidate generator (parts fitted on the data before the label window, no
ranker) and the registered policy (parts loaded from a run's artifacts, as serving will load them) go
through :func:`assemble`, so they cannot drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from models.hybrid import HybridPolicy, PolicyConfig
from models.training.layout import RunLayout
from models.training.params import POLICY_PARTS, TrainParams
from models.training.table import FitInputs, entry, load


def _aligned(values: np.ndarray, ids: np.ndarray, target: np.ndarray) -> np.ndarray:
    return pd.Series(values, index=ids).reindex(target).fillna(0.0).to_numpy()


def assemble(
    parts: Mapping[str, Any],
    retriever: Any,
    ranker: Any,
    item_features: pd.DataFrame,
    config: PolicyConfig = PolicyConfig(),
    meta: Mapping[str, Any] | None = None,
) -> HybridPolicy:
    """``parts``: the fitted ``POLICY_PARTS`` (popularity, trending, co-occurrence) by name; their score
    vectors are aligned on the co-occurrence model's item ids."""
    cooc, trending, popularity = parts["cooccurrence"], parts["trending"], parts["popularity"]
    return HybridPolicy(
        retriever=retriever,
        ranker=ranker,
        item_ids=cooc.item_ids_,
        cooccurrence=cooc.cooccurrence_,
        trending=_aligned(trending.trending_, trending.item_ids_, cooc.item_ids_),
        popularity=_aligned(popularity.popularity_, popularity.item_ids_, cooc.item_ids_),
        item_features=item_features,
        config=config,
        meta=meta,
    )


def stage1_policy(events: pd.DataFrame, catalog: pd.DataFrame | None, params: TrainParams) -> HybridPolicy:
    """Retrieval fitted on ``events`` only: a candidate generator (no ranker) for the label window."""
    inputs = FitInputs(settings=None, params=params, events=events, catalog=catalog)
    parts = {name: entry(name).fit(inputs) for name in POLICY_PARTS}
    tower = entry("two_tower").fit(inputs)
    return assemble(parts, tower, None, pd.DataFrame(index=pd.Index([], name="item_id")))


def load_policy(layout: RunLayout, meta: Mapping[str, Any] | None = None) -> HybridPolicy:
    """The policy from a run's fitted parts (artifacts, as serving would load them)."""
    parts = {name: load(name, layout.model_dir(name)) for name in POLICY_PARTS}
    features = pd.read_parquet(layout.item_features).set_index("item_id")
    ranker_info = json.loads(layout.ranker_info.read_text())
    return assemble(
        parts,
        retriever=load("two_tower", layout.model_dir("two_tower")),
        ranker=load("wide_deep", layout.model_dir("wide_deep")),
        item_features=features,
        config=PolicyConfig(cold_start=ranker_info["cold_start"]),
        meta=meta,
    )
