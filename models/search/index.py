"""The catalog's search index: one sentence vector per item in a faiss inner-product index.

Built from the lake's catalog (title, description and category path of each item), saved under
``$AISLE_HOME/search/<key>/`` where the key is a digest of the texts and of the model, so an index is
rebuilt exactly when the catalog's words or the model change and is otherwise loaded in milliseconds.
Vectors are unit length, so inner product is cosine similarity; the index is exact (``IndexFlatIP``):
a catalog of 100k items costs 150 MB and ~10 ms per query, and needs no training step.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from aisle.core.errors import BadInput
from aisle.core.settings import Settings
from models.search.embedder import Embedder, model_fingerprint

FILES: Final = {"index": "items.faiss", "ids": "item_ids.json", "meta": "meta.json"}
#: Older index directories kept beside the newest (a service still loading one must find it).
KEEP: Final = 2


def item_texts(catalog: pd.DataFrame) -> list[str]:
    """What is embedded per item: "title. description. top / sub / leaf" (missing parts left out)."""

    def column(name: str) -> pd.Series:
        if name not in catalog:
            return pd.Series([""] * len(catalog), index=catalog.index)
        return catalog[name].astype("string").fillna("").str.strip()

    title, description = column("title"), column("description")
    path = column("category").str.replace(">", " / ", regex=False)
    out = []
    for parts in zip(title, description, path, strict=True):
        out.append(". ".join(p.rstrip(".") for p in parts if p))
    return out


def catalog_key(item_ids: list[str], texts: list[str]) -> str:
    """Digest of the item ids, their texts and the model: equal keys mean an equal index."""
    h = hashlib.sha256(model_fingerprint().encode())
    for item, text in zip(item_ids, texts, strict=True):
        h.update(item.encode())
        h.update(b"\x1f")
        h.update(text.encode())
        h.update(b"\x1e")
    return h.hexdigest()[:20]


@dataclass(frozen=True)
class SearchIndex:
    item_ids: np.ndarray  # str, row order of the index
    vectors: np.ndarray  # (n, dim) float32, unit rows
    index: Any  # faiss.Index
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.item_ids)

    @property
    def key(self) -> str:
        return str(self.meta.get("key", ""))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows) of the ``k`` nearest items per query vector, best first; rows -1 past the end."""
        k = max(1, min(k, len(self.item_ids)))
        scores, rows = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return scores, rows

    @classmethod
    def from_vectors(cls, item_ids: list[str], vectors: np.ndarray, meta: dict[str, Any]) -> SearchIndex:
        import faiss

        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        return cls(np.asarray(item_ids, dtype=object).astype(str), vectors, index, meta)

    def save(self, root: Path) -> Path:
        """Write to ``root/<key>/`` atomically (a reader never sees half an index); returns the dir."""
        import faiss

        final = root / self.key
        if (final / FILES["meta"]).is_file():
            return final
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / f".tmp-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            faiss.write_index(self.index, str(tmp / FILES["index"]))
            (tmp / FILES["ids"]).write_text(json.dumps(self.item_ids.tolist()))
            (tmp / FILES["meta"]).write_text(json.dumps(self.meta, indent=2))
            try:
                tmp.rename(final)
            except OSError:  # another process saved the same key first: theirs is as good
                shutil.rmtree(tmp, ignore_errors=True)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        _prune(root, keep=final)
        return final

    @classmethod
    def load(cls, directory: Path) -> SearchIndex:
        import faiss

        index = faiss.read_index(str(directory / FILES["index"]))
        ids = json.loads((directory / FILES["ids"]).read_text())
        meta = json.loads((directory / FILES["meta"]).read_text())
        vectors = index.reconstruct_n(0, index.ntotal) if index.ntotal else np.zeros((0, index.d), np.float32)
        return cls(np.asarray(ids, dtype=object).astype(str), vectors, index, meta)


def _prune(root: Path, keep: Path) -> None:
    dirs = sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in [d for d in dirs if d != keep][KEEP - 1 :]:
        shutil.rmtree(old, ignore_errors=True)


def build_index(
    catalog: pd.DataFrame,
    embedder: Embedder,
    *,
    progress: Callable[[int, int], Any] | None = None,
) -> SearchIndex:
    """Embed every catalog item (``item_id`` plus any of title, description, category)."""
    if catalog.empty:
        raise BadInput("the catalog is empty: nothing to index for search")
    ids = catalog["item_id"].astype(str).tolist()
    texts = item_texts(catalog)
    started = time.perf_counter()
    vectors = embedder.encode(texts, progress=progress)
    meta = {
        "key": catalog_key(ids, texts),
        "model": model_fingerprint(),
        "items": len(ids),
        "dim": int(vectors.shape[1]),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(time.perf_counter() - started, 2),
        "threads": embedder.threads,
    }
    return SearchIndex.from_vectors(ids, vectors, meta)


def current_index(settings: Settings, catalog: pd.DataFrame) -> SearchIndex | None:
    """The saved index of exactly this catalog (and model), or None when there is none yet."""
    ids = catalog["item_id"].astype(str).tolist()
    directory = settings.paths.search / catalog_key(ids, item_texts(catalog))
    if not (directory / FILES["meta"]).is_file():
        return None
    return SearchIndex.load(directory)


def ensure_index(
    settings: Settings,
    catalog: pd.DataFrame,
    *,
    threads: int = 1,
    progress: Callable[[int, int], Any] | None = None,
) -> tuple[SearchIndex, bool]:
    """The index of ``catalog``: loaded when saved, else built and saved. Returns (index, built now)."""
    found = current_index(settings, catalog)
    if found is not None:
        return found, False
    index = build_index(catalog, Embedder(threads), progress=progress)
    index.save(settings.paths.search)
    return index, True
