"""Jobs: build the catalog's search index, and search it from the command line.

The service builds the index itself when it starts on a catalog that has none, but embedding a large
catalog takes minutes (about 100 items per CPU-second), so ``aisle search build`` (the demo runs it)
prepares it ahead; the service then only loads it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from aisle.app.jobs import parse_params
from aisle.core.errors import BadInput
from aisle.core.settings import Settings


@dataclass(frozen=True)
class BuildParams:
    threads: int = 2  # onnxruntime threads while embedding

    def __post_init__(self) -> None:
        if not 1 <= self.threads <= 64:
            raise BadInput(f"--threads must be between 1 and 64 (got {self.threads})")


def _catalog(settings: Settings) -> Any:
    from serving.catalog import read_snapshot

    snapshot = read_snapshot(settings)
    if not len(snapshot):
        raise BadInput(
            f"the lake at {settings.paths.lake} holds no catalog to index; ingest one first "
            "(`aisle ingest batch`, or `aisle demo`)"
        )
    return snapshot.frame.reset_index()


def build(settings: Settings, params: Any = None, *, progress: Any = None) -> dict[str, Any]:
    """The index of the lake's current catalog: loaded when it exists, else embedded and saved."""
    from models.search.index import ensure_index

    p = parse_params(BuildParams, params)
    catalog = _catalog(settings)
    started = time.perf_counter()
    index, built = ensure_index(settings, catalog, threads=p.threads, progress=progress)
    return {
        "items": len(index),
        "built": built,
        "key": index.key,
        "path": str(settings.paths.search / index.key),
        "model": index.meta.get("model"),
        "seconds": round(time.perf_counter() - started, 2),
    }


@dataclass(frozen=True)
class QueryParams:
    query: str = ""
    k: int = 10

    def __post_init__(self) -> None:
        if not self.query.strip():
            raise BadInput("a search needs words: aisle search query 'something to boil water'")
        if not 1 <= self.k <= 100:
            raise BadInput(f"--k must be between 1 and 100 (got {self.k})")


def query(settings: Settings, params: Any = None) -> dict[str, Any]:
    """Search the saved index by meaning, without the service (no shopper re-ranking)."""
    from models.search.embedder import Embedder
    from models.search.index import current_index

    p = parse_params(QueryParams, params)
    catalog = _catalog(settings)
    index = current_index(settings, catalog)
    if index is None:
        raise BadInput("the catalog has no search index yet; run `aisle search build` first")
    scores, rows = index.search(Embedder(1).encode([p.query]), p.k)
    details = catalog.set_index("item_id")
    hits = []
    for score, row in zip(scores[0], rows[0], strict=True):
        if row < 0:
            continue
        item = str(index.item_ids[row])
        hits.append(
            {
                "item_id": item,
                "similarity": round(float(score), 4),
                "title": str(details.at[item, "title"]) if item in details.index else item,
                "category": str(details.at[item, "category"]) if item in details.index else None,
            }
        )
    return {"query": p.query, "items": hits}
