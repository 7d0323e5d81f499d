"""``POST /search``: catalog items by meaning, re-ranked for the shopper when one is named.

1. **By meaning**: the query is embedded with the same sentence model as the catalog
   (``models.search``) and the nearest items are taken from the faiss index of the lake's catalog.
2. **For the shopper** (``user_id`` given, a trained policy served, the shopper known online): the
   served policy's ranker scores those candidates for the shopper, with the same features as for
   /recommend. Its percentile within the candidates adds up to ``PERSONAL_WEIGHT`` to the cosine
   similarity, so taste reorders items that match the query about equally well (within 0.05 of
   cosine) and never lifts an item that matches it clearly worse; the measured effect on precision is
   in ``docs/search.md``.

Each worker loads the index saved for the current catalog (``aisle search build`` writes it) or, when
there is none, builds it in a background thread; meanwhile /search answers 503 with how far it got.
A changed catalog file is noticed by the refresher and indexed again the same way.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from aisle.core.errors import AisleError
from aisle.core.settings import Settings
from serving.catalog import CatalogSnapshot

log = logging.getLogger("bentoml.aisle.search")

#: Candidates by meaning that the shopper's taste may reorder.
POOL: Final = 50
#: Most the shopper's taste adds to an item's cosine similarity (at the top percentile).
PERSONAL_WEIGHT: Final = 0.05
MATCH: Final = "matches your search"
MATCH_AND_TASTE: Final = "matches your search and your taste"


class SearchNotReady(AisleError):
    """No index for the current catalog yet (being built, or no catalog): 503 with this sentence."""


@dataclass(frozen=True)
class Hit:
    item_id: str
    score: float
    similarity: float
    reason: str


class CatalogSearch:
    """One worker's search index over the catalog snapshot it was built from."""

    def __init__(self, settings: Settings, threads: int = 1) -> None:
        self.settings = settings
        self.threads = threads
        self._index: Any = None  # models.search.index.SearchIndex
        self._embedder: Any = None
        self._building: str | None = None  # key being built
        self._progress = (0, 0)
        self.error: str | None = None
        self._lock = threading.Lock()

    @property
    def ready(self) -> bool:
        return self._index is not None

    def status(self) -> dict[str, Any]:
        index = self._index
        return {
            "ready": index is not None,
            "items": len(index) if index is not None else 0,
            "key": index.key if index is not None else None,
            "building": self._building,
            "progress": list(self._progress),
            "error": self.error,
        }

    def update(self, catalog: CatalogSnapshot, *, background: bool = True) -> None:
        """Serve the index of ``catalog``: load or build it (in a thread when ``background``)."""
        from models.search.index import catalog_key, item_texts

        if not len(catalog):
            return
        frame = catalog.frame.reset_index()
        key = catalog_key(frame["item_id"].tolist(), item_texts(frame))
        with self._lock:
            if (self._index is not None and self._index.key == key) or self._building == key:
                return
            self._building = key
        if background:
            threading.Thread(target=self._build, args=(frame, key), name="aisle-search", daemon=True).start()
        else:
            self._build(frame, key)

    def _build(self, frame: Any, key: str) -> None:
        from models.search.embedder import Embedder
        from models.search.index import ensure_index

        started = time.perf_counter()
        try:
            if self._embedder is None:
                self._embedder = Embedder(self.threads)
            index, built = ensure_index(
                self.settings, frame, threads=max(self.threads, 2), progress=self._advance
            )
            self._index = index
            self.error = None
            how = "built" if built else "loaded"
            log.info("search index %s: %d items in %.1f s", how, len(index), time.perf_counter() - started)
        except Exception as exc:
            self.error = f"building the search index failed: {exc}"
            log.error("%s; search keeps the index it had", self.error)
        finally:
            with self._lock:
                if self._building == key:
                    self._building = None

    def _advance(self, done: int, total: int) -> None:
        self._progress = (done, total)

    def candidates(self, query: str, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(item ids, cosine similarities) of the ``n`` items nearest to ``query``, best first."""
        index, embedder = self._index, self._embedder
        if index is None or embedder is None:
            if self._building:
                done, total = self._progress
                raise SearchNotReady(
                    f"the search index is being built ({done} of {total or '?'} items embedded); "
                    "try again in a moment"
                )
            raise SearchNotReady(self.error or "there is no catalog to search yet (ingest one first)")
        scores, rows = index.search(embedder.encode([query]), n)
        keep = rows[0] >= 0
        return index.item_ids[rows[0][keep]], scores[0][keep].astype(np.float64)


def rerank(item_ids: np.ndarray, similarity: np.ndarray, personal: np.ndarray | None, k: int) -> list[Hit]:
    """The best ``k`` by similarity plus the shopper's taste (see the module docstring); ``personal``
    holds the ranker's score per item (NaN where it has none), or None for no personalisation."""
    score = similarity.copy()
    lifted = np.zeros(len(score), dtype=bool)
    if personal is not None and len(personal):
        known = ~np.isnan(personal)
        if known.sum() > 1:
            order = np.argsort(np.argsort(personal[known], kind="stable"), kind="stable")
            percentile = np.zeros(len(score))
            percentile[known] = order / (known.sum() - 1)
            score = score + PERSONAL_WEIGHT * percentile
    ranked = np.lexsort((item_ids.astype(str), -score))[:k]
    by_meaning = np.argsort(-similarity, kind="stable")
    meaning_rank = np.empty(len(similarity), dtype=np.int64)
    meaning_rank[by_meaning] = np.arange(len(similarity))
    for place, row in enumerate(ranked):
        lifted[row] = personal is not None and meaning_rank[row] > place
    return [
        Hit(str(item_ids[r]), float(score[r]), float(similarity[r]), MATCH_AND_TASTE if lifted[r] else MATCH)
        for r in ranked
    ]


PersonalScores = Callable[[list[str]], "np.ndarray | None"]


def search(
    engine: CatalogSearch, query: str, k: int, personal: PersonalScores | None = None
) -> tuple[list[Hit], bool]:
    """(hits, personalised) for ``query``: ``personal(item_ids)`` returns the shopper's scores, or None
    when there is no one to personalise for."""
    ids, similarity = engine.candidates(query, max(POOL, k))
    scores = personal(ids.tolist()) if personal is not None and len(ids) else None
    return rerank(ids, similarity, scores, k), scores is not None


def answer(engine: CatalogSearch, catalog: CatalogSnapshot, served: Any, reader: Any, request: Any) -> Any:
    """The /search response: hits with their catalog details, re-ranked by the served policy's ranker
    for a shopper with history (``served``: a ServedPolicy; ``reader``: the online context reader)."""
    from serving.schemas import SearchHit, SearchResponse

    personal: PersonalScores | None = None
    degraded = False
    version: str | None = None
    scorer = getattr(served.policy, "score_items", None)
    if request.user_id and scorer is not None:
        online = reader.read([request.user_id])
        degraded = bool(online.degraded)
        queries = online.contexts.queries([request.user_id])
        if not degraded and len(queries.frame["recent_items"].iloc[0]):

            def personal(item_ids: list[str]) -> np.ndarray:
                return np.asarray(scorer(queries.frame, item_ids), dtype=np.float64)

            version = served.version
    hits, personalised = search(engine, request.query, request.k, personal)
    details = {d["item_id"]: d for d in catalog.details(h.item_id for h in hits)}
    items = []
    for hit in hits:
        info = details.get(hit.item_id, {})
        items.append(
            SearchHit(
                item_id=hit.item_id,
                score=round(hit.score, 6),
                similarity=round(hit.similarity, 6),
                title=str(info.get("title") or hit.item_id),
                category=info.get("category"),
                price=info.get("price"),
                in_stock=info.get("in_stock"),
                reason=hit.reason,
            )
        )
    return SearchResponse(
        query=request.query,
        items=items,
        personalized=personalised,
        model_version=version if personalised else None,
        degraded=degraded,
    )
