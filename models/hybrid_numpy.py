"""The hybrid policy's per-shopper path in numpy: what serving runs for every ``/recommend``.

:class:`~models.hybrid.HybridPolicy` ranks shoppers in blocks through frames, which suits evaluation and
training (its models may be Keras models or TensorFlow signatures). Per request that costs ~9 ms of
pandas work for one shopper's ~150 candidates. When the policy's user tower and ranker are the numpy
copies serving loads (``models.two_tower.numpy_tower``, ``models.wide_deep.numpy_scorer``), the policy is
compiled once into arrays indexed by item row, and a shopper is answered with integer indices end to end:

* everything about an item that does not depend on the shopper is computed at compile time: its feature
  columns, its recency signals, and their share of the ranker's first layer and wide logit (the first
  layer is linear in its inputs, so a row's pre-activation is item share + shopper share + pair share);
* per request: the user tower on one query, the faiss search, the co-occurrence row of the recent items,
  the candidate union as a mask, the pair columns of the candidates, the shopper's share once, the pair
  share per candidate, the rest of the network, and the top ``k``;
* the wide part's crosses (shopper's favourite × item's value) are looked up once per favourite value
  and kept as one vector over the items.

Same candidates, same features, same network as the frame path: ``tests/model/test_hybrid.py`` checks
that both give the same lists (and scores within float32 rounding) for every shopper of a trained shop.
A policy whose parts or feature layout this module does not know is not compiled, and keeps the frame
path.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd

from feature_repo.tables import USER_FEATURES
from models.features import (
    ITEM_CATEGORICAL,
    ITEM_NUMERIC,
    USER_CATEGORICAL,
    USER_NUMERIC,
    ColumnTable,
    numbers_or_nan,
    pair_feature_columns,
)
from models.policy_signals import ITEM_SIGNALS, row_entries
from models.two_tower.export import OVERFETCH_MARGIN
from models.two_tower.model import PAD
from models.two_tower.model import USER_NUMERIC as TOWER_COUNTERS
from models.wide_deep.model import RankerSpec, encode_frame

if TYPE_CHECKING:
    from models.hybrid import HybridPolicy, Recommendation

#: Ranker inputs that depend only on the item, only on the shopper, and on both.
ITEM_SIDE: Final = frozenset((*ITEM_NUMERIC, *ITEM_CATEGORICAL, "in_stock", *ITEM_SIGNALS))
USER_SIDE: Final = frozenset((*USER_NUMERIC, *USER_CATEGORICAL, "days_since_last_event"))
PAIR_SIDE: Final = (
    "same_category",
    "same_brand",
    "price_vs_paid",
    "tower_score",
    "cooc_score",
    "sequence_score",
    "neighbour_rank",
)
_FAV_CATEGORY: Final = f"{USER_FEATURES}__fav_category_30d"
_FAV_BRAND: Final = f"{USER_FEATURES}__fav_brand_30d"
_PAID: Final = f"{USER_FEATURES}__avg_price_paid_30d"
#: Cached cross vectors (one per cross and favourite value) before the cache starts over.
CROSS_CACHE_MAX: Final = 4096
#: Cross vectors are computed at compile time for every favourite value the ranker knows when that is at
#: most this many (value, item) pairs; others on first use.
CROSS_PRECOMPUTE_MAX: Final = 2_000_000


def _sub_spec(spec: RankerSpec, columns: frozenset[str] | tuple[str, ...]) -> RankerSpec:
    return RankerSpec(
        ids=tuple(c for c in spec.ids if c in columns),
        categorical=tuple(c for c in spec.categorical if c in columns),
        numeric=tuple(c for c in spec.numeric if c in columns),
        crosses=(),
    )


def _number(value: Any) -> float:
    """``pd.to_numeric(value, errors="coerce")`` of one value: NaN when missing or not a number."""
    if value is None or isinstance(value, bool | np.bool_):
        return float(value) if value is not None else math.nan
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


class NumpyHybrid:
    """A :class:`HybridPolicy` compiled for one shopper at a time (see the module docstring)."""

    @classmethod
    def compile(cls, policy: HybridPolicy) -> NumpyHybrid | None:
        """The compiled policy, or None when its parts are not numpy copies or its ranker reads columns
        this module does not place (the frame path then answers, as before)."""
        retriever: Any = policy.retriever
        ranker: Any = policy.ranker
        if not (hasattr(retriever, "embed_arrays") and hasattr(retriever, "nearest")):
            return None
        if ranker is None or not hasattr(ranker, "partial"):
            return None
        spec: RankerSpec = ranker.spec
        columns = set(spec.columns)
        if spec.ids or not columns <= ITEM_SIDE | USER_SIDE | set(PAIR_SIDE):
            return None
        for left, right in spec.crosses:
            if not (left in USER_SIDE and right in ITEM_SIDE):
                return None
        tower_ids = np.asarray(retriever.item_ids).astype(str)
        positions = policy.item_index.get_indexer(tower_ids)
        if (positions < 0).any():  # the tower knows items the policy does not: keep the frame path
            return None
        if policy.sequence is not None:  # so does the sequence model
            sequence_ids = np.asarray(policy.sequence.item_ids_).astype(str)
            if (policy.item_index.get_indexer(sequence_ids) < 0).any():
                return None
        return cls(policy, positions)

    def __init__(self, policy: HybridPolicy, tower_rows: np.ndarray) -> None:
        self.policy = policy
        retriever: Any = policy.retriever  # numpy copies (checked in compile), typed loosely
        ranker: Any = policy.ranker
        self.retriever = retriever
        self.ranker = ranker
        self.item_features = policy.item_features
        spec: RankerSpec = self.ranker.spec
        ids = np.asarray(policy.item_ids).astype(str)
        n = len(ids)
        self.ids = ids
        self.row_of = {item: row for row, item in enumerate(ids.tolist())}
        self.id_rank = np.empty(n, dtype=np.int64)
        self.id_rank[np.argsort(ids, kind="stable")] = np.arange(n)
        # the tower's item rows ↔ the policy's
        self.tower_rows = tower_rows
        self.n_tower = len(tower_rows)
        tower_emb = np.asarray(self.retriever.item_embeddings(), dtype=np.float32)
        self.tower_emb = np.zeros((n, tower_emb.shape[1]), dtype=np.float32)
        self.tower_emb[tower_rows] = tower_emb
        self.in_tower = np.zeros(n, dtype=bool)
        self.in_tower[tower_rows] = True
        self.history = int(self.retriever.history)
        # the item columns exactly as the frame path gathers them for a candidate
        pairs = pd.DataFrame({"user_id": np.full(n, "", dtype=object), "item_id": ids.astype(object)})
        empty_users = ColumnTable(pd.Index([], name="user_id"), {})
        columns = pair_feature_columns(pairs, empty_users, ColumnTable.from_frame(policy.item_features))
        columns.update({name: policy.signals[name] for name in ITEM_SIGNALS})
        item_spec = _sub_spec(spec, ITEM_SIDE)
        self.item_deep, self.item_wide = self.ranker.partial(
            encode_frame(item_spec, columns), item_spec.columns
        )
        self.user_spec = _sub_spec(spec, USER_SIDE)
        self.pair_spec = _sub_spec(spec, PAIR_SIDE)
        # what the pair columns read of each item: its category and brand as text (None where missing,
        # which matches nothing) and its price
        self.top_category = _texts(columns["item_features__top_category"])
        self.brand = _texts(columns["item_features__brand"])
        self.price = numbers_or_nan(columns["item_features__price"])
        self.crosses = [
            (left, encode_frame(_sub_spec(spec, frozenset((right,))), columns)[right], i)
            for i, (left, right) in enumerate(spec.crosses)
        ]
        self._cross_cache: dict[tuple[int, str], np.ndarray] = {}
        self._cross_lock = threading.Lock()
        for left, right_values, i in self.crosses:  # every favourite the ranker knows, if not too many
            known = ["", *self.ranker.vocab[left]]
            if len(known) * n <= CROSS_PRECOMPUTE_MAX and len(known) * len(self.crosses) <= CROSS_CACHE_MAX:
                for value in known:
                    self._cross(i, value, right_values)
        self.linked = policy._linked
        self.cooc = policy.cooccurrence
        self.sequence = policy.sequence
        if self.sequence is not None:
            seq_index, seq_emb = policy._sequence_items()
            self.seq_ids = np.asarray(seq_index).astype(str)
            self.seq_emb = seq_emb
            # the sequence model's column → policy row; compile() refused a model with items the policy
            # does not know, so every column has a row
            self.seq_rows = policy.item_index.get_indexer(self.seq_ids)
            self.seq_col = np.full(n, -1, dtype=np.int64)  # policy row → column (-1: not in the model)
            self.seq_col[self.seq_rows] = np.arange(len(self.seq_rows))

    def built_for(self, policy: HybridPolicy) -> bool:
        """Still valid for ``policy``: the same models and item features it was compiled from."""
        return (
            policy.retriever is self.retriever
            and policy.ranker is self.ranker
            and policy.sequence is self.sequence
            and policy.item_features is self.item_features
        )

    # ------------------------------------------------------------------ one shopper

    def ranked(
        self,
        user_id: str,
        recent: list[str],
        values: Mapping[str, Any],
        seen: set[str],
        k: int,
        timings: dict[str, float] | None = None,
    ) -> Recommendation:
        """The shopper's top ``k``: ``recent`` item ids newest first (already cut to the policy's
        ``recent_items``), ``values`` the query row's user feature columns, ``seen`` never to return."""
        from models.hybrid import HYBRID, Recommendation

        policy, cfg = self.policy, self.policy.config
        n = len(self.ids)
        anchors = np.fromiter((self.row_of.get(i, -1) for i in recent), dtype=np.int64, count=len(recent))
        banned = np.zeros(n, dtype=bool)
        seen_rows = [self.row_of[i] for i in seen if i in self.row_of]
        banned[seen_rows] = True
        # signals: the user embedding, the co-occurrence row, the sequence model's scores
        embedding = self._embed(user_id, recent, values)
        known = anchors[anchors >= 0]
        cooc = np.zeros(n, dtype=np.float64)
        if len(known):  # the sum of the recent items' co-occurrence rows, as the frame path's product
            _, cols, data = row_entries(self.cooc, known)
            cooc = np.bincount(cols, weights=data, minlength=n).astype(np.float64)
        sequence = None
        if self.sequence is not None:
            sequence = np.asarray(self.sequence.states([recent]) @ self.seq_emb.T, dtype=np.float64)[0]
        # candidates: the sources' union minus seen, as a mask over item rows
        chosen = np.zeros(n, dtype=bool)
        chosen[self._tower_top(embedding, cfg.retrieval_candidates, banned, len(seen))] = True
        nz = np.flatnonzero(cooc > 0)
        if nz.size > cfg.cooccurrence_candidates:
            nz = nz[
                np.argpartition(-cooc[nz], cfg.cooccurrence_candidates - 1)[: cfg.cooccurrence_candidates]
            ]
        chosen[nz] = True
        if sequence is not None:
            best = np.argpartition(-sequence, min(cfg.sequence_candidates, len(self.seq_ids)) - 1)
            chosen[self.seq_rows[best[: cfg.sequence_candidates]]] = True
        chosen[policy._trending_order[: cfg.trending_candidates + len(seen)]] = True
        chosen[policy._cold_order[: cfg.trending_candidates + len(seen)]] = True
        chosen &= ~banned
        candidates = np.flatnonzero(chosen)
        started = time.perf_counter()
        scores = self._score(candidates, embedding, cooc, sequence, recent, values)
        if timings is not None:
            timings["ranking"] = timings.get("ranking", 0.0) + time.perf_counter() - started
        order = np.lexsort((self.id_rank[candidates], -scores))[:k]
        top = candidates[order]
        return Recommendation(self.ids[top].tolist(), scores[order].tolist(), HYBRID)

    def _embed(self, user_id: str, recent: list[str], values: Mapping[str, Any]) -> np.ndarray:
        """The user tower's embedding (1, dim), from the inputs the frame path gives it."""
        history = np.full((1, self.history), PAD, dtype=object)
        top = recent[: self.history]
        history[0, : len(top)] = top
        counters = np.asarray(
            [[_number(values.get(f"{USER_FEATURES}__{name}")) for name in TOWER_COUNTERS]], dtype=np.float64
        )
        counters = np.nan_to_num(counters, nan=0.0).astype(np.float32)
        users = np.asarray([user_id], dtype=object)
        return np.asarray(self.retriever.embed_arrays(users, history, counters), dtype=np.float32)

    def _tower_top(self, embedding: np.ndarray, k: int, banned: np.ndarray, n_seen: int) -> np.ndarray:
        """Policy rows of the tower's top ``k`` unbanned items (the faiss search the frame path runs)."""
        if k <= 0 or self.n_tower == 0:
            return np.zeros(0, dtype=np.int64)
        fetch = min(self.n_tower, k + n_seen + OVERFETCH_MARGIN)
        distances, labels = self.retriever.nearest(embedding, fetch)
        labels, distances = labels[0], distances[0]
        valid = labels >= 0
        rows = np.full(len(labels), -1, dtype=np.int64)
        rows[valid] = self.tower_rows[labels[valid]]
        keep = valid & ~banned[np.maximum(rows, 0)]
        labels, distances, rows = labels[keep], distances[keep], rows[keep]
        return rows[np.lexsort((labels, -distances))[:k]]

    def _score(
        self,
        candidates: np.ndarray,
        embedding: np.ndarray,
        cooc: np.ndarray,
        sequence: np.ndarray | None,
        recent: list[str],
        values: Mapping[str, Any],
    ) -> np.ndarray:
        m = len(candidates)
        if not m:
            return np.zeros(0, dtype=np.float64)
        tower = np.where(self.in_tower[candidates], self.tower_emb[candidates] @ embedding[0], 0.0)
        seq = np.zeros(m, dtype=np.float64)
        if sequence is not None:
            cols = self.seq_col[candidates]
            seq[cols >= 0] = sequence[cols[cols >= 0]]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.log((self.price[candidates] + 1.0) / (_number(values.get(_PAID)) + 1.0))
        pair = {  # models.features.pair_columns for one shopper (tested equal through the lists)
            "same_category": _same(values.get(_FAV_CATEGORY), self.top_category, candidates),
            "same_brand": _same(values.get(_FAV_BRAND), self.brand, candidates),
            "price_vs_paid": np.where(np.isfinite(ratio), ratio, 0.0),
            "tower_score": tower.astype(np.float64),
            "cooc_score": cooc[candidates],
            "sequence_score": seq,
            "neighbour_rank": self._neighbour_ranks(recent, candidates),
        }
        user: dict[str, np.ndarray] = {}
        for column in self.user_spec.string_columns:
            user[column] = np.asarray([_text(values.get(column))], dtype=object)
        for column in self.user_spec.numeric:
            user[column] = np.asarray([_number(values.get(column))], dtype=np.float64)
        user_deep, user_wide = self.ranker.partial(user, self.user_spec.columns)
        pair_deep, _ = self.ranker.partial(pair, self.pair_spec.columns)
        deep = self.item_deep[candidates] + pair_deep + user_deep
        wide = self.item_wide[candidates] + user_wide
        for left, right_values, i in self.crosses:
            wide = wide + self._cross(i, _text(values.get(left)), right_values)[candidates]
        return np.asarray(self.ranker.finish(deep, wide), dtype=np.float64)

    def _neighbour_ranks(self, recent: list[str], candidates: np.ndarray) -> np.ndarray:
        """``models.policy_signals.neighbour_ranks`` for one shopper: 1 / (1 + p) for the newest
        position p of a recent item linked to the candidate, 0 if none."""
        best = np.zeros(len(self.ids), dtype=np.float64)
        linked = self.linked
        for position in range(len(recent) - 1, -1, -1):  # oldest first: newer positions overwrite
            row = self.row_of.get(recent[position], -1)
            if row < 0:
                continue
            lo, hi = linked.indptr[row], linked.indptr[row + 1]
            cols = linked.indices[lo:hi][linked.data[lo:hi] > 0]
            best[cols] = 1.0 / (1.0 + position)
        return best[candidates]

    def _cross(self, i: int, text: str, right_values: np.ndarray) -> np.ndarray:
        """Cross ``i``'s wide weight for every item, given the shopper's value of its left column."""
        key = (i, text)
        vector = self._cross_cache.get(key)
        if vector is None:
            buckets = self.ranker.crosses[i](np.full(len(right_values), text, dtype=object), right_values)
            vector = self.ranker.cross_weights[i][buckets]
            with self._cross_lock:
                if len(self._cross_cache) >= CROSS_CACHE_MAX:
                    self._cross_cache = {}
                self._cross_cache[key] = vector
        return vector


def _text(value: Any) -> str:
    """A string input as ``encode_frame`` gives it to the ranker: "" for None/NaN, else ``str``."""
    if value is None or value is pd.NA or (isinstance(value, float | np.floating) and math.isnan(value)):
        return ""
    return str(value)


def _texts(values: np.ndarray) -> np.ndarray:
    """Values as text for an equality test, None where missing (``models.features._same``'s rule)."""
    missing = pd.isna(values)
    return np.asarray(
        [None if gone else str(v) for v, gone in zip(values, missing, strict=True)], dtype=object
    )


def _same(favourite: Any, texts: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """1.0 where the shopper's favourite equals the candidate's value as text; a missing one matches
    nothing (``models.features._same``)."""
    if _text(favourite) == "" and favourite != "":  # None, NaN, NA: missing
        return np.zeros(len(candidates), dtype=np.float64)
    return (texts[candidates] == str(favourite)).astype(np.float64)
