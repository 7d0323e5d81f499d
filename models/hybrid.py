"""The hybrid policy serving uses: retrieve from several sources, rank with Wide & Deep, fall back to a
recency list.

Why several sources: the two-tower model knows long-term taste, co-occurrence of the last few items
knows the current shopping intent (phone → case) within seconds of a click, the SASRec sequence model
(when the run fitted one) reads the order of the shopper's recent items, and the recency lists
(trending with a tuned half-life, the cold-start list) cover what is new and hot, which the learned
sources have seen too little of. The ranker then orders the union with user and item features and the
recency signals of ``models.policy_signals`` (popularity at several half-lives, item age, time since the
shopper's last event, where in the shopper's recent items the candidate's neighbours sit). Users with no
history at all (and no recent items from the stream) get the cold-start list, whichever of popularity,
recent popularity and trending ranked the validation period's new users best; nothing in this path can
fail on an unknown user.

One score semantics for every list: a recommendation's score is the ranker's estimate of how strongly
this shopper will engage with the item, ``E[grade] / purchase grade`` in 0..1 (see
``models.wide_deep.train``). For a shopper with no history the items and their order come from the
cold-start source (chosen per run because it ranks new shoppers best); the ranker is asked the same
question about a shopper it knows nothing of, and its answers, made non-increasing down the cold-start
order (pool-adjacent-violators), are the scores. So 0.14 means the same for a known shopper and a new
one, and a CSV or a response can be sorted, thresholded or compared across shoppers.

The policy is built from fitted parts (in-memory models or their exported artifacts, which share the
``embed_users``/``search``/``score`` interface), evaluated as a ``Recommender`` and exported as one
directory that MLflow registers and serving loads.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from feature_repo.tables import USER_FEATURES
from models.features import POLICY_SIGNALS, USER_CATEGORICAL, USER_NUMERIC, ColumnTable, pair_feature_columns
from models.policy_signals import ITEM_SIGNALS, neighbour_ranks
from models.two_tower.model import USER_NUMERIC as TOWER_COUNTERS

if TYPE_CHECKING:
    from models.hybrid_numpy import NumpyHybrid

log = logging.getLogger(__name__)

#: The two-tower query's counters and the Feast user feature each is read from (same names by design).
TOWER_FROM_FEAST = {name: f"{USER_FEATURES}__{name}" for name in TOWER_COUNTERS}
COLD_START = "cold_start"
#: Cold-start sources, each the name of the policy's item-score vector it ranks by.
COLD_SOURCES = ("trending", "popularity", "recent_popularity")
HYBRID = "hybrid"
#: The query columns the compiled path reads (the tower's counters are among the user features).
FAST_QUERY_COLUMNS = (*USER_NUMERIC, *USER_CATEGORICAL, "days_since_last_event")
#: Users scored together: bounds the dense co-occurrence block and the ranker's frame.
BLOCK_USERS = 256
#: How far down the cold-start order the ranker scores items for a shopper with no history.
COLD_DEPTH = 1000


class Retriever(Protocol):
    @property
    def item_ids(self) -> Any: ...  # embedding row order: an array (artifact) or a method (model)

    def item_embeddings(self) -> np.ndarray: ...

    def embed_users(self, queries: pd.DataFrame) -> np.ndarray: ...

    def search(
        self, user_embeddings: np.ndarray, k: int, exclude: Sequence[set[str]] | None = None
    ) -> tuple[list[list[str]], list[list[float]]]: ...


class Ranker(Protocol):
    def score(self, frame: pd.DataFrame | Mapping[str, np.ndarray]) -> np.ndarray: ...


@dataclass(frozen=True)
class PolicyConfig:
    retrieval_candidates: int = 100
    cooccurrence_candidates: int = 50
    trending_candidates: int = 50
    sequence_candidates: int = 50
    recent_items: int = 20
    #: What shoppers with no history at all get (one of COLD_SOURCES), chosen per training run on the
    #: validation period (models.tuning.choose_cold_start), never on the test days.
    cold_start: str = "trending"

    def __post_init__(self) -> None:
        if self.cold_start not in COLD_SOURCES:
            raise ValueError(f"cold_start must be one of {COLD_SOURCES} (got {self.cold_start!r})")


@dataclass
class Recommendation:
    items: list[str]
    scores: list[float]
    source: str  # "hybrid" or "cold_start"


class HybridPolicy:
    """Candidates = two-tower ∪ co-occurrence(recent items) ∪ sequence model ∪ trending ∪ the cold-start
    list, minus seen; ranked by the ranker."""

    def __init__(
        self,
        retriever: Retriever,
        ranker: Ranker | None,
        item_ids: np.ndarray,
        cooccurrence: sp.csr_matrix,
        trending: np.ndarray,
        popularity: np.ndarray,
        item_features: pd.DataFrame,
        config: PolicyConfig = PolicyConfig(),
        meta: Mapping[str, Any] | None = None,
        *,
        recent_popularity: np.ndarray | None = None,
        signals: Mapping[str, np.ndarray] | None = None,
        sequence: Any | None = None,
    ):
        """``signals``: ``models.policy_signals.ITEM_SIGNALS`` vectors aligned to ``item_ids`` (zeros
        when absent); ``sequence``: a fitted SASRec model or artifact (``states``/``item_embeddings``/
        ``item_ids_``), or None; ``recent_popularity`` defaults to ``popularity``."""
        if cooccurrence.shape != (len(item_ids), len(item_ids)):
            raise ValueError("co-occurrence matrix does not match the item ids")
        recent_popularity = popularity if recent_popularity is None else recent_popularity
        if {len(trending), len(popularity), len(recent_popularity)} != {len(item_ids)}:
            raise ValueError("trending/popularity vectors do not match the item ids")
        self.retriever = retriever
        self.ranker = ranker
        self.item_ids = np.asarray(item_ids, dtype=object)
        self.item_index = pd.Index(self.item_ids)
        self.cooccurrence = cooccurrence.tocsr()
        self.trending = np.asarray(trending, dtype=np.float64)
        self.popularity = np.asarray(popularity, dtype=np.float64)
        self.recent_popularity = np.asarray(recent_popularity, dtype=np.float64)
        self.signals = {
            name: np.asarray((signals or {}).get(name, np.zeros(len(item_ids))), dtype=np.float64)
            for name in ITEM_SIGNALS
        }
        self.sequence = sequence
        self._linked = (self.cooccurrence > 0).astype(np.float64).tocsr()
        self.item_features = item_features
        self.config = config
        self.meta = dict(meta or {})
        self._trending_order = ranked_order(self.item_ids, self.trending)
        self._tower_cache: tuple[pd.Index, np.ndarray] | None = None
        self._sequence_cache: tuple[pd.Index, np.ndarray] | None = None
        self._cold_scores = getattr(self, config.cold_start)  # COLD_SOURCES name the score vectors
        self._cold_order = ranked_order(self.item_ids, self._cold_scores)
        self._cold_estimates: np.ndarray | None = None  # see _cold_calibrated

    def with_parts(
        self, retriever: Retriever | None = None, ranker: Ranker | None = None, sequence: Any | None = None
    ) -> Self:
        """A copy answering with another retriever, ranker and/or sequence model (serving's numpy copies
        of the same exported models); what was derived from a replaced part is recomputed on first use."""
        policy = copy.copy(self)
        if retriever is not None:
            policy.retriever, policy._tower_cache = retriever, None
        if ranker is not None:
            policy.ranker, policy._cold_estimates = ranker, None
        if sequence is not None:
            policy.sequence, policy._sequence_cache, policy._cold_estimates = sequence, None, None
        return policy

    # ------------------------------------------------------------------ recommending

    #: ``recommend`` reports, when asked, the seconds it spent ranking (serving's stage metrics).
    reports_timings = True
    #: ``recommend`` also takes the query rows as plain columns (a mapping), not only as a frame.
    takes_columns = True

    def recommend(
        self,
        queries: pd.DataFrame | Mapping[str, Sequence[Any]],
        k: int,
        seen: Sequence[set[str]] | None = None,
        timings: dict[str, float] | None = None,
    ) -> list[Recommendation]:
        """One recommendation list per query row (same order).

        ``queries``: the query rows of the shopper-context contract (``models.context``:
        ``Contexts.queries(...).columns``, a frame or a mapping of columns): ``user_id``,
        ``recent_items`` (newest first; may be empty) and
        the Feast user feature columns (missing ones are treated as null). ``seen``: items never to
        recommend per row (the contract's ``excluded``). ``timings["ranking"]`` gains the seconds spent
        building the ranker's features and scoring; the rest is retrieval.
        """
        if k <= 0:
            return [Recommendation([], [], HYBRID) for _ in range(len(queries["user_id"]))]
        fast = self.numpy_path()
        if fast is not None:
            return self._recommend_numpy(fast, queries, k, seen, timings)
        if not isinstance(queries, pd.DataFrame):
            queries = pd.DataFrame(dict(queries))
        queries = self._complete(queries)
        seen = list(seen) if seen is not None else [set() for _ in range(len(queries))]
        if len(seen) != len(queries):
            raise ValueError("seen must have one set per query row")
        out: list[Recommendation | None] = [None] * len(queries)
        warm = np.flatnonzero(queries["recent_items"].map(len).to_numpy() > 0)
        for row in np.setdiff1d(np.arange(len(queries)), warm):
            out[row] = self._cold(k, seen[row])
        for start in range(0, len(warm), BLOCK_USERS):
            rows = warm[start : start + BLOCK_USERS]
            block = self._ranked(
                queries.iloc[rows].reset_index(drop=True), [seen[r] for r in rows], k, timings
            )
            for row, rec in zip(rows, block, strict=True):
                out[row] = rec
        return [r for r in out if r is not None]

    def numpy_path(self) -> NumpyHybrid | None:
        """This policy compiled for one shopper at a time (``models.hybrid_numpy``) when its models are
        numpy copies (serving's), else None; compiled on first use and again after a part changed."""
        from models.hybrid_numpy import NumpyHybrid

        compiled = self.__dict__.get("_numpy")
        if compiled is not None and compiled.built_for(self):
            return compiled
        if not getattr(self.ranker, "partial", None) or not getattr(self.retriever, "embed_arrays", None):
            return None
        try:
            compiled = NumpyHybrid.compile(self)
        except Exception as exc:  # a layout it does not know: the frame path answers, as before
            log.warning("policy not compiled for numpy serving (%s: %s)", type(exc).__name__, exc)
            compiled = None
        self._numpy = compiled
        return compiled

    def _recommend_numpy(
        self,
        fast: NumpyHybrid,
        queries: pd.DataFrame | Mapping[str, Sequence[Any]],
        k: int,
        seen: Sequence[set[str]] | None,
        timings: dict[str, float] | None,
    ) -> list[Recommendation]:
        """:meth:`recommend` through the compiled path: the same query normalisation as
        :meth:`_complete`, one shopper at a time, no frame built."""
        n = len(queries["user_id"])
        seen = list(seen) if seen is not None else [set() for _ in range(n)]
        if len(seen) != n:
            raise ValueError("seen must have one set per query row")
        users = [str(u) for u in queries["user_id"]]
        recents = self._recent_lists(
            list(queries["recent_items"]) if "recent_items" in queries else [None] * n
        )
        wanted = [c for c in (*FAST_QUERY_COLUMNS, *TOWER_FROM_FEAST.values()) if c in queries]
        columns = {c: np.asarray(queries[c]) for c in dict.fromkeys(wanted)}
        out = []
        for r in range(n):
            if not recents[r]:
                out.append(self._cold(k, seen[r]))
                continue
            values = {c: v[r] for c, v in columns.items()}
            out.append(fast.ranked(users[r], recents[r], values, seen[r], k, timings))
        return out

    def _recent_lists(self, raw: Sequence[Any]) -> list[list[str]]:
        """Each row's recent items as text, newest first, at most ``config.recent_items``; [] where
        the row has none (null or not a list)."""
        limit = self.config.recent_items
        return [
            [str(i) for i in items][:limit] if isinstance(items, list | tuple | np.ndarray) else []
            for items in raw
        ]

    def _complete(self, queries: pd.DataFrame) -> pd.DataFrame:
        # one frame built from numpy columns: per request (one shopper) pandas' per-operation cost of
        # copying, inserting and concatenating ~30 columns was more than the ranking itself
        columns: dict[str, Any] = {c: queries[c].to_numpy() for c in queries.columns}
        n = len(queries)
        columns["user_id"] = queries["user_id"].astype(str).to_numpy()
        columns["recent_items"] = self._recent_lists(columns.get("recent_items", [None] * n))
        for col in (*USER_NUMERIC, *USER_CATEGORICAL):
            columns.setdefault(col, np.full(n, None, dtype=object))
        for tower_col, feast_col in TOWER_FROM_FEAST.items():
            if tower_col not in columns:
                numbers = pd.to_numeric(pd.Series(columns[feast_col]), errors="coerce").fillna(0.0)
                columns[tower_col] = numbers.to_numpy()
        return pd.DataFrame(columns)

    def _cold(self, k: int, seen: set[str]) -> Recommendation:
        """The first ``k`` unseen items of the cold-start source, scored on the ranker's scale."""
        depth = k + len(seen)  # enough of the order to find k unseen items
        chosen = [pos for pos in range(min(depth, len(self._cold_order))) if self._cold_item(pos) not in seen]
        chosen = chosen[:k]
        if self.ranker is None:  # a candidate generator: only the source's own scores exist
            scores = [float(self._cold_scores[self._cold_order[pos]]) for pos in chosen]
        else:
            calibrated = self._cold_calibrated()
            scores = [float(calibrated[min(pos, len(calibrated) - 1)]) for pos in chosen]
        return Recommendation([self._cold_item(pos) for pos in chosen], scores, COLD_START)

    def cold_start_scores(self) -> np.ndarray:
        """Per item, in ``item_ids`` order: the score a shopper with no history sees it with (the
        ranker's scale; the source's own without a ranker). Serving fills short lists from it."""
        if self.ranker is None:
            return np.array(self._cold_scores, dtype=np.float64)
        calibrated = self._cold_calibrated()
        out = np.full(len(self.item_ids), calibrated[-1] if len(calibrated) else 0.0, dtype=np.float64)
        out[self._cold_order[: len(calibrated)]] = calibrated
        return out

    def _cold_item(self, position: int) -> str:
        return str(self.item_ids[self._cold_order[position]])

    def _cold_calibrated(self) -> np.ndarray:
        """The ranker's scores for a shopper with no history along the first ``COLD_DEPTH`` items of
        the cold-start order, made non-increasing so the list's order (the source's) and its scores
        agree. Computed once per policy; deeper positions (shoppers who saw hundreds of the top items)
        take the last value, so a score never depends on which shopper was asked first."""
        depth = min(COLD_DEPTH, len(self._cold_order))
        if self._cold_estimates is None:
            query = self._complete(pd.DataFrame({"user_id": ["(new shopper)"], "recent_items": [[]]}))
            embeddings, cooc = self._signals(query)
            items = [self._cold_item(pos) for pos in range(depth)]
            pairs = pd.DataFrame({"row": np.zeros(depth, dtype=np.int64), "item_id": items})
            pairs["user_id"] = "(new shopper)"
            pairs = self.pair_scores(pairs, embeddings, cooc, query, self._sequence_scores(query))
            assert self.ranker is not None
            raw = np.asarray(self.ranker.score(self.features(query, pairs)), dtype=np.float64)
            self._cold_estimates = non_increasing(raw)
        return self._cold_estimates

    def _sequence_items(self) -> tuple[pd.Index, np.ndarray]:
        if self._sequence_cache is None and self.sequence is not None:
            ids = np.asarray(self.sequence.item_ids_).astype(str)
            self._sequence_cache = (pd.Index(ids), np.asarray(self.sequence.item_embeddings()))
        assert self._sequence_cache is not None
        return self._sequence_cache

    def _sequence_scores(self, queries: pd.DataFrame) -> np.ndarray | None:
        """Per query row, the sequence model's score of every item it knows (None without one)."""
        if self.sequence is None:
            return None
        _, emb = self._sequence_items()
        return np.asarray(self.sequence.states(list(queries["recent_items"])) @ emb.T, dtype=np.float64)

    def _signals(self, queries: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Per query row: the two-tower user embedding and the dense co-occurrence score row.

        Co-occurrence scores are the sum over the user's recent items of P(item | anchor in the same
        session), exactly what the co-occurrence baseline ranks by.
        """
        history = _history(self.retriever)
        tower_queries = pd.DataFrame(  # what the user tower reads (a copy of the whole frame cost more)
            {
                "user_id": queries["user_id"].to_numpy(),
                "recent_items": [items[:history] for items in queries["recent_items"]],
                **{c: queries[c].to_numpy() for c in TOWER_FROM_FEAST},
            },
            index=queries.index,
        )
        embeddings = np.asarray(self.retriever.embed_users(tower_queries), dtype=np.float32)
        rows, cols = [], []
        for r, items in enumerate(queries["recent_items"]):
            idx = self.item_index.get_indexer(items)
            idx = idx[idx >= 0]
            rows.extend([r] * len(idx))
            cols.extend(idx.tolist())
        anchors = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(queries), len(self.item_ids)))
        return embeddings, (anchors @ self.cooccurrence).toarray()

    def _tower_items(self) -> tuple[pd.Index, np.ndarray]:
        if self._tower_cache is None:
            ids = self.retriever.item_ids  # an attribute on artifacts, a method on models
            ids = ids() if callable(ids) else ids
            self._tower_cache = (
                pd.Index(np.asarray(ids).astype(str)),
                np.asarray(self.retriever.item_embeddings()),
            )
        return self._tower_cache

    def pair_scores(
        self,
        pairs: pd.DataFrame,
        embeddings: np.ndarray,
        cooc: np.ndarray,
        queries: pd.DataFrame | None = None,
        sequence: np.ndarray | None = None,
    ) -> pd.DataFrame:
        """Add the policy's signals (``models.features.POLICY_SIGNALS``) to (row, item_id) pairs:
        ``tower_score`` (user · item embedding), ``cooc_score``, ``sequence_score``, ``neighbour_rank``,
        the item's recency signals and the shopper's ``days_since_last_event``.

        The retrieval scores are the ranker's strongest inputs; items a source does not know score 0.
        """
        rows = pairs["row"].to_numpy(dtype=np.int64)
        tower_index, tower_emb = self._tower_items()
        t_idx = tower_index.get_indexer(pairs["item_id"].astype(str))
        tower = np.zeros(len(pairs), dtype=np.float64)
        known = t_idx >= 0
        tower[known] = np.einsum("ij,ij->i", embeddings[rows[known]], tower_emb[t_idx[known]])
        c_idx = self.item_index.get_indexer(pairs["item_id"].astype(str))
        co = np.zeros(len(pairs), dtype=np.float64)
        known = c_idx >= 0
        co[known] = cooc[rows[known], c_idx[known]]
        seq = np.zeros(len(pairs), dtype=np.float64)
        if sequence is not None:
            s_idx = self._sequence_items()[0].get_indexer(pairs["item_id"].astype(str))
            seen_by_model = s_idx >= 0
            seq[seen_by_model] = sequence[rows[seen_by_model], s_idx[seen_by_model]]
        if queries is None:  # the shoppers' queries unknown: no recent items, no last event
            n_rows = int(rows.max()) + 1 if len(rows) else 0
            recent: list[list[str]] = [[] for _ in range(n_rows)]
            since = np.full(n_rows, np.nan)
        else:
            recent = list(queries["recent_items"])
            since = pd.to_numeric(
                queries.get("days_since_last_event", pd.Series(np.nan, index=queries.index)), errors="coerce"
            ).to_numpy(dtype=np.float64)
        columns = {
            "tower_score": tower,
            "cooc_score": co,
            "sequence_score": seq,
            "neighbour_rank": neighbour_ranks(recent, self.item_index, self._linked, rows, c_idx),
            "days_since_last_event": since[rows] if len(rows) else np.zeros(0),
        }
        for name, vector in self.signals.items():
            columns[name] = np.where(c_idx >= 0, vector[np.maximum(c_idx, 0)], 0.0)
        # one frame, not ~12 column inserts (assign): per request those cost more than the ranking
        return pd.DataFrame({**{c: pairs[c].to_numpy() for c in pairs.columns}, **columns}, index=pairs.index)

    def candidates(
        self, queries: pd.DataFrame, seen: Sequence[set[str]]
    ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        """The union of the three sources per query row, minus seen items, with retrieval scores.

        Returns (pairs with row, user_id, item_id, tower_score, cooc_score; embeddings; co-occurrence rows).
        """
        return self._candidates(self._complete(queries), seen)

    def _candidates(
        self, queries: pd.DataFrame, seen: Sequence[set[str]]
    ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        """:meth:`candidates` of a query frame already completed by :meth:`_complete`."""
        cfg = self.config
        embeddings, cooc = self._signals(queries)
        sequence = self._sequence_scores(queries)
        tt_items, _ = self.retriever.search(embeddings, cfg.retrieval_candidates, exclude=list(seen))
        row_col: list[int] = []
        item_col: list[str] = []
        for r in range(len(queries)):
            chosen = dict.fromkeys(tt_items[r])
            nz = np.flatnonzero(cooc[r] > 0)
            if nz.size > cfg.cooccurrence_candidates:
                nz = nz[
                    np.argpartition(-cooc[r, nz], cfg.cooccurrence_candidates - 1)[
                        : cfg.cooccurrence_candidates
                    ]
                ]
            chosen.update(dict.fromkeys(str(i) for i in self.item_ids[nz]))
            if sequence is not None:
                s_ids = self._sequence_items()[0]
                best = np.argpartition(-sequence[r], min(cfg.sequence_candidates, len(s_ids)) - 1)
                chosen.update(dict.fromkeys(str(i) for i in s_ids[best[: cfg.sequence_candidates]]))
            hot = self._trending_order[: cfg.trending_candidates + len(seen[r])]
            chosen.update(dict.fromkeys(str(i) for i in self.item_ids[hot]))
            cold = self._cold_order[: cfg.trending_candidates + len(seen[r])]
            chosen.update(dict.fromkeys(str(i) for i in self.item_ids[cold]))
            kept = [c for c in chosen if c not in seen[r]]
            row_col.extend([r] * len(kept))
            item_col.extend(kept)
        pairs = pd.DataFrame({"row": np.asarray(row_col, dtype=np.int64), "item_id": item_col})
        pairs["user_id"] = queries["user_id"].to_numpy()[pairs["row"].to_numpy()] if len(pairs) else []
        return self.pair_scores(pairs, embeddings, cooc, queries, sequence), embeddings, cooc

    def features(self, queries: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
        """The ranker's input for scored pairs: Feast user and item features, pair columns, scores."""
        return pd.DataFrame(self._feature_columns(queries, pairs))

    def _feature_columns(self, queries: pd.DataFrame, pairs: pd.DataFrame) -> dict[str, np.ndarray]:
        """:meth:`features` as numpy columns, which the ranker scores without building a frame."""
        users = queries["user_id"].to_numpy()
        _, first = np.unique(users.astype(str), return_index=True)  # each shopper's first row, in order
        first = np.sort(first)
        user_features = ColumnTable(  # the frame's columns as they are: no per-request frame operations
            pd.Index(users[first], name="user_id"),
            {c: queries[c].to_numpy()[first] for c in (*USER_NUMERIC, *USER_CATEGORICAL)},
        )
        scores = {col: pairs[col].to_numpy() for col in POLICY_SIGNALS}
        return pair_feature_columns(pairs, user_features, self._item_table(), extra=scores)

    def _item_table(self) -> ColumnTable:
        """``item_features`` as numpy columns, converted once (again if the frame is replaced)."""
        cached = self.__dict__.get("_item_columns")
        if cached is None or cached[0] is not self.item_features:
            cached = (self.item_features, ColumnTable.from_frame(self.item_features))
            self._item_columns = cached
        return cached[1]

    def _ranked(
        self,
        queries: pd.DataFrame,
        seen: Sequence[set[str]],
        k: int,
        timings: dict[str, float] | None = None,
    ) -> list[Recommendation]:
        pairs, _, _ = self._candidates(queries, seen)
        if self.ranker is None:
            raise RuntimeError("this policy has no ranker (a candidate generator only)")
        started = time.perf_counter()
        if len(pairs):
            columns = self._feature_columns(queries, pairs)
            pairs["score"] = np.asarray(self.ranker.score(columns), dtype=np.float64)
        else:
            pairs["score"] = np.array([], dtype=np.float64)
        if timings is not None:
            timings["ranking"] = timings.get("ranking", 0.0) + time.perf_counter() - started
        # per row: score descending, ties by item id, in numpy (pandas' sort + groupbys: ~1 ms a request)
        rows = pairs["row"].to_numpy(dtype=np.int64)
        items = pairs["item_id"].to_numpy(dtype=object)
        scores = pairs["score"].to_numpy(dtype=np.float64)
        _, item_rank = np.unique(items.astype(str), return_inverse=True)  # lexicographic order of the ids
        order = np.lexsort((item_rank, -scores, rows))
        ranked_rows = rows[order]
        starts = np.flatnonzero(np.r_[True, ranked_rows[1:] != ranked_rows[:-1]]) if len(order) else order
        position = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
        top = order[position < k]
        out = [Recommendation([], [], HYBRID) for _ in range(len(queries))]
        for r in np.unique(rows[top]).tolist():
            chosen = top[rows[top] == r]
            out[r] = Recommendation(items[chosen].tolist(), scores[chosen].tolist(), HYBRID)
        return out

    def score_items(self, queries: pd.DataFrame, item_ids: Sequence[str]) -> np.ndarray:
        """The ranker's score of ``item_ids`` for the shopper of the first query row, computed as for a
        recommendation (retrieval signals and features), so another source's candidates (search hits)
        can be ordered by the same taste; NaN for items this policy does not know."""
        query = self._complete(queries.iloc[:1])
        ids = [str(i) for i in item_ids]
        known = self.item_index.get_indexer(ids) >= 0
        out = np.full(len(ids), np.nan)
        if not known.any() or self.ranker is None:
            return out
        embeddings, cooc = self._signals(query)
        chosen = [i for i, ok in zip(ids, known, strict=True) if ok]
        pairs = pd.DataFrame({"row": np.zeros(len(chosen), dtype=np.int64), "item_id": chosen})
        pairs["user_id"] = str(query["user_id"].iloc[0])
        pairs = self.pair_scores(pairs, embeddings, cooc, query, self._sequence_scores(query))
        out[known] = np.asarray(self.ranker.score(self._feature_columns(query, pairs)), dtype=np.float64)
        return out

    # ------------------------------------------------------------------ persistence

    def export(
        self,
        out_dir: Path,
        retriever_dir: str = "two_tower",
        ranker_dir: str = "wide_deep",
        sequence_dir: str = "sasrec",
    ) -> Path:
        """Write the policy's own state next to the retriever's, ranker's (and sequence model's) artifacts.

        The caller exports those (``models.two_tower.export``, ``models.wide_deep.export``,
        ``models.sasrec.export``) into ``out_dir / <name>_dir``; this writes the rest.
        """
        out_dir.mkdir(parents=True, exist_ok=True)
        sp.save_npz(out_dir / "cooccurrence.npz", self.cooccurrence.astype(np.float32))
        vectors: dict[str, Any] = {
            "trending": self.trending,
            "popularity": self.popularity,
            "recent_popularity": self.recent_popularity,
            **self.signals,
        }
        np.savez(out_dir / "vectors.npz", **vectors)
        (out_dir / "item_ids.json").write_text(json.dumps([str(i) for i in self.item_ids]))
        features = self.item_features.copy()
        features.index = features.index.astype(str)
        features.index.name = "item_id"
        features.reset_index().to_parquet(out_dir / "item_features.parquet", index=False)
        manifest = {
            "config": asdict(self.config),
            "retriever": retriever_dir,
            "ranker": ranker_dir,
            "sequence": sequence_dir if self.sequence is not None else None,
            "meta": self.meta,
        }
        (out_dir / "policy.json").write_text(json.dumps(manifest, indent=2, default=str))
        return out_dir

    @classmethod
    def load(cls, policy_dir: Path) -> Self:
        """Load an exported policy (the directory ``export`` wrote, as MLflow stores it)."""
        from models.two_tower.export import TwoTowerArtifact
        from models.wide_deep.export import WideDeepArtifact

        manifest = json.loads((policy_dir / "policy.json").read_text())
        vectors = dict(np.load(policy_dir / "vectors.npz"))
        features = pd.read_parquet(policy_dir / "item_features.parquet").set_index("item_id")
        sequence = None
        if manifest.get("sequence"):
            from models.sasrec.export import SASRecArtifact

            sequence = SASRecArtifact.load(policy_dir / manifest["sequence"])
        config = {k: v for k, v in manifest["config"].items() if k in PolicyConfig.__dataclass_fields__}
        return cls(
            retriever=TwoTowerArtifact.load(policy_dir / manifest["retriever"]),
            ranker=WideDeepArtifact.load(policy_dir / manifest["ranker"]),
            item_ids=np.asarray(json.loads((policy_dir / "item_ids.json").read_text()), dtype=object),
            cooccurrence=sp.load_npz(policy_dir / "cooccurrence.npz").tocsr(),
            trending=vectors["trending"],
            popularity=vectors["popularity"],
            item_features=features,
            config=PolicyConfig(**config),
            meta=manifest.get("meta", {}),
            recent_popularity=vectors.get("recent_popularity"),  # absent in policies exported before #11
            signals={name: vectors[name] for name in ITEM_SIGNALS if name in vectors},
            sequence=sequence,
        )


def ranked_order(item_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Indices of ``item_ids`` by descending score, ties broken by item id (reproducible lists)."""
    return np.lexsort((np.asarray(item_ids).astype(str), -np.asarray(scores)))


def non_increasing(values: np.ndarray) -> np.ndarray:
    """The closest non-increasing sequence to ``values`` in squared error (pool adjacent violators)."""
    sums: list[float] = []
    counts: list[int] = []
    for value in np.asarray(values, dtype=np.float64):
        sums.append(float(value))
        counts.append(1)
        while len(sums) > 1 and sums[-2] / counts[-2] < sums[-1] / counts[-1]:
            total, n = sums.pop(), counts.pop()
            sums[-1] += total
            counts[-1] += n
    return np.repeat([t / n for t, n in zip(sums, counts, strict=True)], counts)


def _history(retriever: Retriever) -> int:
    """How many recent items the retriever's user tower takes (artifact attribute or model config)."""
    value = getattr(retriever, "history", None) or getattr(
        getattr(retriever, "config", None), "history", None
    )
    return int(value) if value else 10
