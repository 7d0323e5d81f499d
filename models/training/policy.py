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
from models.training.params import POLICY_PARTS, SEQUENCE, TrainParams
from models.training.table import FitInputs, entry, load


def _aligned(values: np.ndarray, ids: np.ndarray, target: np.ndarray) -> np.ndarray:
    return pd.Series(values, index=ids).reindex(target).fillna(0.0).to_numpy()


def assemble(
    parts: Mapping[str, Any],
    retriever: Any,
    ranker: Any,
    item_features: pd.DataFrame,
    signals: Mapping[str, np.ndarray],
    config: PolicyConfig = PolicyConfig(),
    meta: Mapping[str, Any] | None = None,
    sequence: Any | None = None,
) -> HybridPolicy:
    """``parts``: the fitted ``POLICY_PARTS`` (popularity, recent popularity, trending, co-occurrence) by
    name; their score vectors are aligned on the co-occurrence model's item ids, and so must
    ``signals`` be (``models.policy_signals.item_signals`` over the same item ids)."""
    cooc = parts["cooccurrence"]
    ids = cooc.item_ids_

    def vector(name: str, attribute: str) -> np.ndarray:
        return _aligned(getattr(parts[name], attribute), parts[name].item_ids_, ids)

    return HybridPolicy(
        retriever=retriever,
        ranker=ranker,
        item_ids=ids,
        cooccurrence=cooc.cooccurrence_,
        trending=vector("trending", "trending_"),
        popularity=vector("popularity", "popularity_"),
        recent_popularity=vector("recent_popularity", "recent_popularity_"),
        signals=signals,
        sequence=sequence,
        item_features=item_features,
        config=config,
        meta=meta,
    )


def stage1_policy(
    events: pd.DataFrame,
    catalog: pd.DataFrame | None,
    params: TrainParams,
    tuned: Mapping[str, Any] | None = None,
) -> HybridPolicy:
    """Retrieval fitted on ``events`` only: a candidate generator (no ranker) for the label window, with
    the parameters tuned on the validation period and the sequence model when the run trains one."""
    from models.policy_signals import item_signals

    inputs = FitInputs(settings=None, params=params, events=events, catalog=catalog, tuned=tuned or {})
    parts = {name: entry(name).fit(inputs) for name in POLICY_PARTS}
    tower = entry("two_tower").fit(inputs)
    sequence = entry(SEQUENCE[0]).fit(inputs) if set(SEQUENCE) & set(params.models) else None
    signals = item_signals(events, parts["cooccurrence"].item_ids_)
    empty = pd.DataFrame(index=pd.Index([], name="item_id"))
    return assemble(parts, tower, None, empty, signals, _config(tuned), sequence=sequence)


def _config(tuned: Mapping[str, Any] | None) -> PolicyConfig:
    source = ((tuned or {}).get("cold_start") or {}).get("source")
    return PolicyConfig(cold_start=source) if source else PolicyConfig()


def write_signals(events: pd.DataFrame, layout: RunLayout, item_ids: np.ndarray) -> None:
    """The item recency signals as of the end of ``events``, where ``load_policy`` reads them."""
    from models.policy_signals import item_signals

    frame = pd.DataFrame(item_signals(events, item_ids))
    frame.insert(0, "item_id", np.asarray(item_ids, dtype=object).astype(str))
    frame.to_parquet(layout.item_signals, index=False)


def load_policy(layout: RunLayout, meta: Mapping[str, Any] | None = None) -> HybridPolicy:
    """The policy from a run's fitted parts (artifacts, as serving would load them)."""
    parts = {name: load(name, layout.model_dir(name)) for name in POLICY_PARTS}
    features = pd.read_parquet(layout.item_features).set_index("item_id")
    tuned = json.loads(layout.tuning.read_text()) if layout.tuning.exists() else {}
    sequence = None
    if SEQUENCE and layout.model_dir(SEQUENCE[0]).exists():
        sequence = load(SEQUENCE[0], layout.model_dir(SEQUENCE[0]))
    ids = parts["cooccurrence"].item_ids_
    stored = pd.read_parquet(layout.item_signals).set_index("item_id").reindex(np.asarray(ids).astype(str))
    signals = {name: stored[name].fillna(0.0).to_numpy() for name in stored.columns}
    return assemble(
        parts,
        retriever=load("two_tower", layout.model_dir("two_tower")),
        ranker=load("wide_deep", layout.model_dir("wide_deep")),
        item_features=features,
        signals=signals,
        config=_config(tuned),
        meta=meta,
        sequence=sequence,
    )
