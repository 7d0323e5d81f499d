"""The exported two-tower user tower in numpy: the same embedding without a TensorFlow call per request.

:func:`numpy_tower` reads the user tower's weights, its two string lookups and the constants Keras folded
into the graph (each item's leaf index, the counters' normalisation) out of the loaded SavedModel of a
:class:`~models.two_tower.export.TwoTowerArtifact`, rebuilds ``models.two_tower.model``'s user side in
float32, and checks it against the signature on probe queries before it is used; a copy that cannot be
made or disagrees is refused (None) and the signature keeps embedding. Retrieval (faiss) and the item
embeddings are the artifact's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from models.numpy_copy import checked_copy
from models.tf_weights import dense, graph_constants, lookup_tables, variables
from models.two_tower.model import (
    ITEM_OOV_INDEX,
    ITEM_PAD_INDEX,
    PAD,
    USER_NUMERIC,
    USER_OOV_INDEX,
    query_arrays,
)


class NumpyTower:
    """A :class:`TwoTowerArtifact` whose ``embed_users`` runs in numpy; everything else is the artifact's."""

    def __init__(
        self,
        artifact: Any,
        users: dict[str, int],
        items: dict[str, int],
        weights: dict[str, np.ndarray],
        item_leaves: np.ndarray,
        numeric_mean: np.ndarray,
        numeric_std: np.ndarray,
    ) -> None:
        self.artifact = artifact
        self.item_ids = artifact.item_ids
        self.history = artifact.history
        self.dim = artifact.dim
        self._users = users
        self._items = items
        self._user_table = weights["user_id/embeddings"]
        # an item in a history: its id row (zero for padding and OOV) plus its leaf's row, precomputed
        item_rows = weights["item_id/embeddings"].copy()
        item_rows[: ITEM_OOV_INDEX + 1] = 0.0
        self._item_vectors = (item_rows + weights["leaf/embeddings"][item_leaves]).astype(np.float32)
        self._numeric = (weights["numeric_dense/kernel"], weights["numeric_dense/bias"])
        self._hidden = (weights["user_hidden/kernel"], weights["user_hidden/bias"])
        self._out = (weights["user_out/kernel"], weights["user_out/bias"])
        self._mean = numeric_mean.astype(np.float32)
        self._std = numeric_std.astype(np.float32)

    def item_embeddings(self) -> np.ndarray:
        return np.asarray(self.artifact.item_embeddings())

    def search(
        self, user_embeddings: np.ndarray, k: int, exclude: Sequence[set[str]] | None = None
    ) -> tuple[list[list[str]], list[list[float]]]:
        return self.artifact.search(user_embeddings, k, exclude)

    def nearest(self, user_embeddings: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
        return self.artifact.nearest(user_embeddings, fetch)

    def embed_users(self, queries: pd.DataFrame) -> np.ndarray:
        """float32 (n, dim), equal to the signature's within ``models.numpy_copy.TOLERANCE``."""
        return self.embed_arrays(*query_arrays(queries, self.history))

    def embed_arrays(self, users: np.ndarray, recent: np.ndarray, numeric: np.ndarray) -> np.ndarray:
        """``embed_users`` of the signature's inputs (``query_arrays``' three arrays), no frame."""
        user_idx = np.fromiter(
            (self._users.get(u, USER_OOV_INDEX) for u in users.tolist()), dtype=np.int64, count=len(users)
        )
        items = self._items
        flat = recent.ravel().tolist()
        recent_idx = np.fromiter(
            (ITEM_PAD_INDEX if i == PAD else items.get(i, ITEM_OOV_INDEX) for i in flat),
            dtype=np.int64,
            count=len(flat),
        ).reshape(recent.shape)
        mask = (recent_idx > ITEM_OOV_INDEX).astype(np.float32)[..., None]
        summed = (self._item_vectors[recent_idx] * mask).sum(axis=1)
        history = summed / np.maximum(mask.sum(axis=1), np.float32(1.0))
        scaled = (np.log1p(np.maximum(numeric, np.float32(0.0))) - self._mean) / self._std
        numeric_vec = dense(scaled.astype(np.float32), *self._numeric, relu=True)
        joined = np.concatenate([self._user_table[user_idx], history, numeric_vec], axis=1, dtype=np.float32)
        out = dense(dense(joined, *self._hidden, relu=True), *self._out, relu=False)
        norm = np.sqrt(np.maximum((out * out).sum(axis=1, keepdims=True), np.float32(1e-12)))
        return (out / norm).astype(np.float32)


def _one(found: list[np.ndarray], what: str) -> np.ndarray:
    distinct = {v.tobytes(): v for v in found}
    if len(distinct) != 1:
        raise ValueError(f"expected one {what} in the graph, found {len(distinct)}")
    return next(iter(distinct.values()))


def extract(artifact: Any) -> NumpyTower:
    """The numpy copy of a loaded :class:`TwoTowerArtifact` (unchecked; see :func:`numpy_tower`)."""
    restored = artifact._saved_model
    weights = variables(restored.user_tower)
    tables = [table for _, table in lookup_tables(restored)]
    if len(tables) != 2:
        raise ValueError(f"expected the user and item lookups, found {len(tables)} tables")
    known_items = set(np.asarray(artifact.item_ids).astype(str).tolist())
    items_first = sum(k in known_items for k in tables[0]) >= sum(k in known_items for k in tables[1])
    items, users = (tables[0], tables[1]) if items_first else (tables[1], tables[0])
    rows = len(weights["item_id/embeddings"])
    leaves = len(weights["leaf/embeddings"])
    constants = graph_constants(restored.signatures["serving_default"])
    item_leaves = _one(
        [
            v
            for _, v in constants
            if v.dtype == np.int64 and v.shape == (rows,) and v.min() >= 0 and v.max() < leaves
        ],
        "item → leaf index vector",
    )
    width = (len(USER_NUMERIC),)
    mean = _one(
        [v for n, v in constants if n.endswith("Sub/y") and v.shape == width and v.dtype == np.float32],
        "counter mean",
    )
    std = _one(
        [v for n, v in constants if n.endswith("truediv/y") and v.shape == width and v.dtype == np.float32],
        "counter standard deviation",
    )
    return NumpyTower(artifact, users, items, weights, item_leaves, mean, std)


def probe_queries(tower: NumpyTower, rows: int = 256, seed: int = 0) -> pd.DataFrame:
    """Known and unknown shoppers, histories of every length with known, unknown and repeated items,
    counters from none to many."""
    rng = np.random.default_rng(seed)
    users = np.asarray([*list(tower._users)[:rows], "(never seen)"], dtype=object)
    items = np.asarray([*tower._items, "(never seen)"], dtype=object)
    lengths = rng.integers(0, tower.history + 3, rows)
    recent = [list(items[rng.integers(0, len(items), n)]) for n in lengths]
    frame = pd.DataFrame({"user_id": users[rng.integers(0, len(users), rows)], "recent_items": recent})
    for column in USER_NUMERIC:
        counts = np.floor(rng.lognormal(1.0, 1.5, rows))
        counts[rng.random(rows) < 0.2] = 0.0
        frame[column] = counts
    return frame


def numpy_tower(artifact: Any) -> NumpyTower | None:
    """The checked numpy copy of ``artifact``, or None (with a warning) when it cannot be made or
    disagrees with the signature by more than ``models.numpy_copy.TOLERANCE`` on the probe queries."""

    return checked_copy("user tower", artifact, extract, probe_queries, lambda model, q: model.embed_users(q))
