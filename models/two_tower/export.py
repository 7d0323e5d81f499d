"""The serving artifact of a two-tower model, and the loader serving uses.

Only the user tower runs at request time, so only it is a TensorFlow SavedModel (called through its
serving signature, a ``tf.function``: ~1 ms a call where Keras ``predict`` costs ~80 ms). Item
embeddings are fixed once trained, so they ship as a matrix plus a faiss inner-product index: the
retrieval step needs no TensorFlow at all, and swapping the exact index for an approximate one later
changes one file.

Layout of ``out_dir``::

    user_tower/          SavedModel, signature serving_default:
                         user_id string[None], recent_items string[None, history] ("" = padding),
                         user_numeric float32[None, 3] (views_30d, carts_30d, purchases_30d)
                         → embedding float32[None, dim]
    item_embeddings.npy  float32 (n_items, dim), rows in item_ids order
    item_ids.json        the item ids
    items.faiss          faiss IndexFlatIP over item_embeddings (exact)
    config.json          TwoTowerConfig, USER_NUMERIC, history, dim
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Final, Self

import numpy as np
import pandas as pd

from models.two_tower.model import USER_NUMERIC, embedding_function, query_arrays
from models.two_tower.train import EMBED_BATCH, TwoTowerRecommender, exclusion_mask, ranked_lists

FILES: Final = {
    "user_tower": "user_tower",
    "item_embeddings": "item_embeddings.npy",
    "item_ids": "item_ids.json",
    "index": "items.faiss",
    "config": "config.json",
}
#: Extra neighbours fetched beyond ``k`` + the largest exclusion set, for ties at the cut.
OVERFETCH_MARGIN: Final = 16


def export(model: TwoTowerRecommender, out_dir: Path) -> dict[str, str]:
    """Write the artifact of a fitted model; returns name → path of everything written."""
    import faiss

    from models.tf_runtime import tensorflow

    embeddings = np.ascontiguousarray(model.item_embeddings(), dtype=np.float32)  # raises if unfitted
    tf = tensorflow()
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / file for name, file in FILES.items()}

    module = tf.Module()
    module.user_tower = model.towers_.user_tower
    module.serve = embedding_function(model.towers_.user_tower, model.config.history)
    tf.saved_model.save(module, str(paths["user_tower"]), signatures={"serving_default": module.serve})

    np.save(paths["item_embeddings"], embeddings)
    paths["item_ids"].write_text(json.dumps([str(i) for i in model.item_ids()]))
    index = faiss.IndexFlatIP(embeddings.shape[1])
    index.add(embeddings)
    faiss.write_index(index, str(paths["index"]))
    config = {
        "config": asdict(model.config),
        "user_numeric": list(USER_NUMERIC),
        "history": model.config.history,
        "embedding_dim": int(embeddings.shape[1]),
        "items": len(embeddings),
    }
    paths["config"].write_text(json.dumps(config, indent=2))
    return {name: str(path) for name, path in paths.items()}


class TwoTowerArtifact:
    """An exported two-tower model, loaded for serving: no Keras, no training code paths."""

    def __init__(
        self,
        saved_model: Any,
        index: Any,
        item_ids: np.ndarray,
        history: int,
        dim: int,
        embeddings: np.ndarray | None = None,
    ) -> None:
        self._embeddings = embeddings
        self._saved_model = saved_model  # owns the variables the signature reads: keep it alive
        self._signature = saved_model.signatures["serving_default"]
        self._index = index
        self.item_ids = item_ids
        self._item_index = pd.Index(item_ids)
        self.history = history
        self.dim = dim

    @classmethod
    def load(cls, out_dir: Path) -> Self:
        """Load what ``export`` wrote; fails loudly if it was built for other user features."""
        import faiss

        from models.tf_runtime import load_saved_model

        config = json.loads((out_dir / FILES["config"]).read_text())
        if tuple(config["user_numeric"]) != USER_NUMERIC:
            raise ValueError(f"artifact expects user features {config['user_numeric']}, not {USER_NUMERIC}")
        loaded = load_saved_model(out_dir / FILES["user_tower"])
        item_ids = np.asarray(json.loads((out_dir / FILES["item_ids"]).read_text()), dtype=object).astype(str)
        index = faiss.read_index(str(out_dir / FILES["index"]))
        if index.ntotal != len(item_ids):
            raise ValueError(f"index holds {index.ntotal} items but item_ids lists {len(item_ids)}")
        embeddings = np.load(out_dir / FILES["item_embeddings"])
        return cls(loaded, index, item_ids, int(config["history"]), int(config["embedding_dim"]), embeddings)

    def item_embeddings(self) -> np.ndarray:
        """float32 (n_items, dim) in ``item_ids`` order: what the ranker's pair scores are dotted with."""
        if self._embeddings is None:
            self._embeddings = self._index.reconstruct_n(0, self._index.ntotal)
        return self._embeddings

    def embed_users(self, queries: pd.DataFrame) -> np.ndarray:
        """float32 (n, dim) through the SavedModel's serving signature, in batches."""
        from models.tf_runtime import tensorflow

        tf = tensorflow()
        users, recent, numeric = query_arrays(queries, self.history)
        out = np.zeros((len(users), self.dim), dtype=np.float32)
        for lo in range(0, len(users), EMBED_BATCH):
            hi = lo + EMBED_BATCH
            result = self._signature(
                user_id=tf.constant(users[lo:hi].astype(str)),
                recent_items=tf.constant(recent[lo:hi].astype(str)),
                user_numeric=tf.constant(numeric[lo:hi]),
            )
            out[lo:hi] = result["embedding"].numpy()
        return out

    def nearest(self, user_embeddings: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
        """The faiss index's ``fetch`` nearest items per user: (inner products, rows of ``item_ids``;
        -1 where there are fewer items)."""
        return self._index.search(np.ascontiguousarray(user_embeddings, dtype=np.float32), fetch)

    def search(
        self, user_embeddings: np.ndarray, k: int, exclude: Sequence[set[str]] | None = None
    ) -> tuple[list[list[str]], list[list[float]]]:
        """Top-``k`` items per user from the faiss index, best first, ties by item id.

        The index knows nothing of exclusions, so it is asked for ``k`` + the largest exclusion set
        (+ a margin for ties): after dropping excluded items at least ``k`` remain whenever the
        catalog has them.
        """
        queries = np.ascontiguousarray(user_embeddings, dtype=np.float32)
        n, n_items = len(queries), len(self.item_ids)
        if exclude is not None and len(exclude) != n:
            raise ValueError(f"exclude has {len(exclude)} sets for {n} users")
        items: list[list[str]] = [[] for _ in range(n)]
        scores: list[list[float]] = [[] for _ in range(n)]
        if k <= 0 or n == 0 or n_items == 0:
            return items, scores
        widest = max((len(s) for s in exclude), default=0) if exclude is not None else 0
        fetch = min(n_items, k + widest + OVERFETCH_MARGIN)
        distances, labels = self.nearest(queries, fetch)
        banned = np.zeros((n, fetch), dtype=bool)
        if exclude is not None:
            mask = exclusion_mask(exclude, self._item_index)
            banned = np.take_along_axis(mask, np.maximum(labels, 0), axis=1)
        keep = ~(banned | (labels < 0))
        rows = np.broadcast_to(np.arange(n)[:, None], labels.shape)[keep]
        return ranked_lists(rows, labels[keep], distances[keep], n, k, self.item_ids)
