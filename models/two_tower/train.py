"""Events → a fitted two-tower retrieval model (the ``Recommender`` protocol on top of it).

The examples and queries it learns from are built in ``models.two_tower.data``. The loss is TFRS's
in-batch softmax with the log-Q correction: in-batch negatives are drawn in proportion to popularity,
so without subtracting log(frequency) the model spends its capacity pushing popular items down and
ends up a worse popularity ranker.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Final, Self

import numpy as np
import pandas as pd

from feature_repo.user_recent import grouped_lists
from models.two_tower.data import (
    POSITIVE_TYPES,
    Examples,
    ItemTable,
    build_vocab,
    interaction_frame,
    item_table,
    training_examples,
    user_queries,
)
from models.two_tower.model import (
    TwoTowerConfig,
    Vocab,
    build_towers,
    embedding_function,
    query_arrays,
)

#: Rows per embedding / scoring batch: bounds memory (1024 users × 20k items × 4 B = 80 MB).
EMBED_BATCH: Final = 4096
SEARCH_BATCH: Final = 1024


# ---------------------------------------------------------------- the recommender


def top_k_cells(
    scores: np.ndarray, k: int, banned: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, scores) of the cells that can make each row's top ``k``; ``banned`` cells never do.

    Every column tied with the k-th score is kept, so ties are settled by ``ranked_lists`` (by item
    id), never by argpartition's internal order.
    """
    scores = scores.astype(np.float32, copy=True)
    if banned is not None:
        scores[banned] = -np.inf
    kk = min(k, scores.shape[1])
    part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
    threshold = np.take_along_axis(scores, part, axis=1).min(axis=1)
    rows, cols = np.nonzero((scores >= threshold[:, None]) & np.isfinite(scores))
    return rows, cols, scores[rows, cols]


def ranked_lists(
    rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n_rows: int, k: int, item_ids: np.ndarray
) -> tuple[list[list[str]], list[list[float]]]:
    """Candidate cells → per row at most ``k`` (item id, score), best first, ties by column.

    Columns index ``item_ids``, which is sorted, so a tie goes to the smaller item id: the exact
    search and the faiss search agree on ties, and reruns never reshuffle them.
    """
    order = np.lexsort((cols, -vals, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    keep = np.arange(len(rows)) - np.searchsorted(rows, rows, side="left") < k
    rows, cols, vals = rows[keep], cols[keep], vals[keep]
    bounds = np.r_[0, np.cumsum(np.bincount(rows, minlength=n_rows))]
    ids, values = item_ids[cols].tolist(), vals.astype(float).tolist()
    items = [ids[bounds[r] : bounds[r + 1]] for r in range(n_rows)]
    scores = [values[bounds[r] : bounds[r + 1]] for r in range(n_rows)]
    return items, scores


class TwoTowerRecommender:
    """Two-tower retrieval (TFRS) behind the ``models.evaluation.Recommender`` protocol.

    After ``fit``: ``fit_seconds_``, ``epochs_run_``, ``examples_`` (training examples),
    ``history_`` (weighted mean loss per epoch), ``epoch_seconds_``, ``vocab_`` and ``towers_``
    (what ``export`` saves), ``queries_`` (``user_queries(train)``, what ``recommend`` embeds).
    """

    def __init__(self, config: TwoTowerConfig = TwoTowerConfig()) -> None:
        self.config = config
        self.fit_seconds_ = 0.0
        self.epochs_run_ = 0
        self.examples_ = 0
        self.history_: list[float] = []
        self.epoch_seconds_: list[float] = []

    # -------------------------------------------------------------- fit

    def fit(self, train: pd.DataFrame, catalog: pd.DataFrame | None = None) -> Self:
        """Learn both towers from ``train``; ``catalog`` adds item features and never-seen items."""
        start = time.perf_counter()
        events = interaction_frame(train)
        if events.empty:
            raise ValueError("cannot fit the two-tower model on an empty event table")
        positive_items = events.loc[events["event_type"].isin(POSITIVE_TYPES), "item_id"].to_numpy()
        if positive_items.size == 0:
            raise ValueError(
                "the training events contain no positive interaction "
                f"({', '.join(POSITIVE_TYPES)}); the two-tower model has nothing to learn from"
            )
        cfg = self.config
        queries = user_queries(events, cfg.history)
        items = item_table(events, catalog)
        vocab = build_vocab(queries, positive_items, items)
        examples = training_examples(events, queries, items, vocab, cfg)

        from models.tf_runtime import set_seed

        set_seed(cfg.seed)
        towers = build_towers(vocab, cfg)
        self.history_, self.epoch_seconds_ = _train(towers, examples, items, vocab, cfg)
        self.vocab_ = vocab
        self.towers_ = towers
        self.item_ids_ = items.item_ids.astype(str)
        self._item_index = pd.Index(self.item_ids_)
        self.item_embeddings_ = _item_embeddings(towers, items, vocab)
        self._serve = embedding_function(towers.user_tower, cfg.history)
        self.queries_ = queries.set_index("user_id", drop=False)
        seen = events[["user_id", "item_id"]].drop_duplicates().sort_values(["user_id", "item_id"])
        self._seen_users = seen["user_id"].to_numpy()
        self._seen_items = seen["item_id"].to_numpy()
        self.epochs_run_ = cfg.epochs
        self.examples_ = len(examples.item_pos)
        self.fit_seconds_ = time.perf_counter() - start
        return self

    # -------------------------------------------------------------- embeddings and search

    def embed_users(self, queries: pd.DataFrame) -> np.ndarray:
        """float32 (n, dim) through the same ``tf.function`` that ``export`` saves."""
        from models.tf_runtime import tensorflow

        self._require_fitted()
        tf = tensorflow()
        users, recent, numeric = query_arrays(queries, self.config.history)
        out = np.zeros((len(users), self.config.embedding_dim), dtype=np.float32)
        for lo in range(0, len(users), EMBED_BATCH):
            hi = lo + EMBED_BATCH
            result = self._serve(
                tf.constant(users[lo:hi].astype(str)),
                tf.constant(recent[lo:hi].astype(str)),
                tf.constant(numeric[lo:hi]),
            )
            out[lo:hi] = result["embedding"].numpy()
        return out

    def item_ids(self) -> np.ndarray:
        """Item ids (strings, sorted): the row order of ``item_embeddings()``."""
        self._require_fitted()
        return self.item_ids_

    def item_embeddings(self) -> np.ndarray:
        """float32 (n_items, dim), L2-normalised like the user embeddings."""
        self._require_fitted()
        return self.item_embeddings_

    def _require_fitted(self) -> None:
        if not hasattr(self, "towers_"):
            raise RuntimeError("the two-tower model is not fitted yet: call fit() first")

    def search(
        self, user_embeddings: np.ndarray, k: int, exclude: Sequence[set[str]] | None = None
    ) -> tuple[list[list[str]], list[list[float]]]:
        """Exact top-``k`` items by dot product, excluded items removed, best first, ties by item id."""
        self._require_fitted()
        queries = np.asarray(user_embeddings, dtype=np.float32)
        n = len(queries)
        if exclude is not None and len(exclude) != n:
            raise ValueError(f"exclude has {len(exclude)} sets for {n} users")
        items: list[list[str]] = [[] for _ in range(n)]
        scores: list[list[float]] = [[] for _ in range(n)]
        if k <= 0 or len(self.item_ids_) == 0:
            return items, scores
        for lo in range(0, n, SEARCH_BATCH):
            block = queries[lo : lo + SEARCH_BATCH]
            banned = None
            if exclude is not None:
                banned = exclusion_mask(exclude[lo : lo + SEARCH_BATCH], self._item_index)
            rows, cols, vals = top_k_cells(block @ self.item_embeddings_.T, k, banned)
            block_items, block_scores = ranked_lists(rows, cols, vals, len(block), k, self.item_ids_)
            items[lo : lo + len(block)], scores[lo : lo + len(block)] = block_items, block_scores
        return items, scores

    def seen_items(self, user_ids: Sequence[str]) -> list[set[str]]:
        """Items each user touched in training (any event type): what ``exclude_seen`` removes.

        Built per call from sorted arrays: a dict of sets for every training user costs seconds at
        100k users and is rarely needed whole.
        """
        return [
            set(items) for items in grouped_lists(self._seen_users, self._seen_items, np.asarray(user_ids))
        ]

    def recommend(self, user_ids: Sequence[str], k: int, exclude_seen: bool = True) -> dict[str, list[str]]:
        """Top-``k`` per user; unknown users are embedded as the OOV user with no history."""
        self._require_fitted()
        users = [str(u) for u in user_ids]
        if k <= 0 or not users:
            return {u: [] for u in users}
        queries = self.queries_.reindex(users)
        queries["user_id"] = users
        embeddings = self.embed_users(queries)
        exclude = self.seen_items(users) if exclude_seen else None
        items, _ = self.search(embeddings, k, exclude)
        return dict(zip(users, items, strict=True))


def exclusion_mask(exclude: Sequence[set[str]], index: pd.Index) -> np.ndarray:
    """Boolean (len(exclude), len(index)) mask; ids outside ``index`` are ignored."""
    mask = np.zeros((len(exclude), len(index)), dtype=bool)
    lengths = [len(s) for s in exclude]
    if sum(lengths):
        flat = np.fromiter((str(i) for s in exclude for i in s), dtype=object, count=sum(lengths))
        rows = np.repeat(np.arange(len(exclude)), lengths)
        cols = index.get_indexer(flat)
        mask[rows[cols >= 0], cols[cols >= 0]] = True
    return mask


# ---------------------------------------------------------------- TensorFlow parts


def _item_inputs(items: ItemTable, vocab: Vocab) -> dict[str, np.ndarray]:
    return {
        "item": vocab.item_index(items.item_ids),
        "category": vocab.category_index(items.top_category),
        "brand": vocab.brand_index(items.brand),
        "price": vocab.price_feature(items.price),
        "leaf": vocab.leaf_index(items.leaf),
    }


def _train(
    towers: Any, examples: Examples, items: ItemTable, vocab: Vocab, cfg: TwoTowerConfig
) -> tuple[list[float], list[float]]:
    """Custom loop over a tf.data pipeline; returns the weighted mean loss and the seconds of each
    epoch (the first one includes tracing the step)."""
    from models.tf_runtime import recommenders, tensorflow

    tf, tfrs = tensorflow(), recommenders()
    item_features = _item_inputs(items, vocab)
    pos = examples.item_pos
    data = {
        "user": examples.user_idx,
        "recent": examples.recent_idx,
        "numeric": examples.numeric,
        "candidate": pos,
        "item": item_features["item"][pos],
        "category": item_features["category"][pos],
        "brand": item_features["brand"][pos],
        "price": item_features["price"][pos],
        "leaf": item_features["leaf"][pos],
        "weight": examples.weight,
        "probability": examples.probability,
    }
    n = len(pos)
    # Shuffle row *indices* and gather whole batches: a per-example shuffle/batch pipeline spends
    # ~10 s an epoch per 1M examples just moving single rows around.
    tensors = {name: tf.constant(values) for name, values in data.items()}

    def batches(order: np.ndarray) -> Any:
        return (
            tf.data.Dataset.from_tensor_slices(order)
            .batch(cfg.batch_size)
            .map(lambda rows: {name: tf.gather(t, rows) for name, t in tensors.items()})
            .prefetch(2)
        )

    task = tfrs.tasks.Retrieval(temperature=cfg.temperature, remove_accidental_hits=True)
    optimizer = tf.keras.optimizers.Adagrad(cfg.learning_rate)
    variables = list(
        {v.ref(): v for m in (towers.user_core, towers.item_core) for v in m.trainable_variables}.keys()
    )
    variables = [ref.deref() for ref in variables]

    @tf.function(reduce_retracing=True)
    def step(batch: dict[str, Any]) -> Any:
        with tf.GradientTape() as tape:
            query = towers.user_core([batch["user"], batch["recent"], batch["numeric"]], training=True)
            candidate = towers.item_core(
                [batch["item"], batch["category"], batch["brand"], batch["price"], batch["leaf"]],
                training=True,
            )
            loss = task(
                query,
                candidate,
                sample_weight=batch["weight"],
                candidate_sampling_probability=batch["probability"],
                candidate_ids=batch["candidate"],
                compute_metrics=False,
                compute_batch_metrics=False,
            )
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    total_weight = float(examples.weight.sum())
    losses: list[float] = []
    seconds: list[float] = []
    rng = np.random.default_rng(cfg.seed)
    for _ in range(cfg.epochs):
        start, epoch_loss = time.perf_counter(), 0.0
        for batch in batches(rng.permutation(n)):
            epoch_loss += float(step(batch))
        losses.append(epoch_loss / total_weight)
        seconds.append(time.perf_counter() - start)
    return losses, seconds


def _item_embeddings(towers: Any, items: ItemTable, vocab: Vocab) -> np.ndarray:
    """Every universe item through the item tower, in batches, as float32 (n_items, dim)."""
    from models.tf_runtime import tensorflow

    tf = tensorflow()
    inputs = _item_inputs(items, vocab)

    @tf.function(reduce_retracing=True)
    def embed(item: Any, category: Any, brand: Any, price: Any, leaf: Any) -> Any:
        return towers.item_core([item, category, brand, price, leaf], training=False)

    parts = []
    for lo in range(0, len(items.item_ids), EMBED_BATCH):
        sl = slice(lo, lo + EMBED_BATCH)
        parts.append(
            embed(*(tf.constant(inputs[k][sl]) for k in ("item", "category", "brand", "price", "leaf")))
        )
    return np.concatenate([p.numpy() for p in parts]).astype(np.float32)
