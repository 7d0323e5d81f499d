"""Events → a fitted SASRec model (and the ``Recommender`` protocol on top of it, for the comparison).

Training sequences are each shopper's interactions (``aisle.core.schemas.INTERACTION_TYPES``) in time
order, with immediate repeats of an item collapsed, cut into windows of ``max_len`` + 1 from the newest
backwards; every position learns to predict the next item against ``negatives`` uniformly drawn items
(binary cross-entropy, as in the paper). At serving time a shopper's query is the shopper-context
contract's recent list (distinct items, newest first), reversed to oldest-first: the same order, with
revisits kept once at their latest place.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
import pandas as pd

from aisle.core.schemas import INTERACTION_TYPES
from feature_repo.user_recent import ordered_events, recent_interactions
from models.sasrec.model import OOV_INDEX, PAD_INDEX, SASRecConfig, build_encoder, state_function

log = logging.getLogger(__name__)
SCORE_BATCH = 512


def tokenize(recent: Sequence[Sequence[str]], index: pd.Index, max_len: int) -> np.ndarray:
    """Newest-first item lists → int64 [n, max_len] token ids, oldest first, left-padded (0);
    unknown items become OOV (1)."""
    out = np.full((len(recent), max_len), PAD_INDEX, dtype=np.int64)
    for row, items in enumerate(recent):
        chosen = list(items)[:max_len][::-1]
        if not chosen:
            continue
        ids = index.get_indexer(chosen)
        out[row, max_len - len(chosen) :] = np.where(ids >= 0, ids + 2, OOV_INDEX)
    return out


def training_windows(events: pd.DataFrame, index: pd.Index, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets), both int64 [n, max_len], left-padded: each position's target is the next item."""
    ev = ordered_events(events)
    ev = ev.loc[ev["event_type"].isin(INTERACTION_TYPES).to_numpy()]
    users = ev["user_id"].to_numpy()
    tokens = index.get_indexer(ev["item_id"].to_numpy()) + 2
    keep = np.r_[True, (users[1:] != users[:-1]) | (tokens[1:] != tokens[:-1])]  # collapse repeats
    users, tokens = users[keep], tokens[keep]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    ends = np.r_[starts[1:], len(users)]
    inputs, targets = [], []
    for lo, hi in zip(starts, ends, strict=True):
        seq = tokens[lo:hi]
        for stop in range(len(seq), 1, -max_len):  # newest window first, then earlier ones
            window = seq[max(0, stop - max_len - 1) : stop]
            row_in = np.zeros(max_len, dtype=np.int64)
            row_out = np.zeros(max_len, dtype=np.int64)
            row_in[max_len - len(window) + 1 :] = window[:-1]
            row_out[max_len - len(window) + 1 :] = window[1:]
            inputs.append(row_in)
            targets.append(row_out)
    if not inputs:
        return np.zeros((0, max_len), np.int64), np.zeros((0, max_len), np.int64)
    return np.vstack(inputs), np.vstack(targets)


class SASRecRecommender:
    """After ``fit``: ``item_ids_`` (sorted), ``encoder_``, ``popularity_``, ``history_`` (loss per
    epoch), ``examples_`` (training windows), ``epochs_run_``, ``fit_seconds_``."""

    def __init__(self, config: SASRecConfig = SASRecConfig()) -> None:
        self.config = config
        self.history_: list[float] = []
        self.examples_ = 0
        self.epochs_run_ = 0
        self.fit_seconds_ = 0.0

    # ------------------------------------------------------------------ fitting

    def fit(self, train: pd.DataFrame, catalog: pd.DataFrame | None = None) -> Self:
        from models.tf_runtime import set_seed, tensorflow

        started = time.perf_counter()
        cfg = self.config
        interactions = train.loc[train["event_type"].isin(INTERACTION_TYPES)]
        if interactions.empty:
            raise ValueError("no interactions to learn sequences from")
        counts = interactions["item_id"].astype(str).value_counts()
        self.item_ids_ = np.sort(counts.index.to_numpy(dtype=object))
        self._index = pd.Index(self.item_ids_)
        self.popularity_ = counts.reindex(self.item_ids_).to_numpy(dtype=np.float64)
        inputs, targets = training_windows(train, self._index, cfg.max_len)
        self.examples_ = len(inputs)
        tf = tensorflow()
        set_seed(cfg.seed)
        n_tokens = len(self.item_ids_) + 2
        self.encoder_, self._table = build_encoder(n_tokens, cfg)
        optimizer = tf.keras.optimizers.Adam(cfg.learning_rate)
        variables = self.encoder_.trainable_variables

        @tf.function(reduce_retracing=True)
        def step(tokens: Any, target: Any) -> Any:
            negatives = tf.random.uniform(
                tf.concat([tf.shape(target), [cfg.negatives]], 0), 2, n_tokens, dtype=tf.int64
            )
            with tf.GradientTape() as tape:
                h = self.encoder_(tokens, training=True)
                pos = tf.reduce_sum(h * self._table(target), axis=-1)
                neg = tf.einsum("bld,blkd->blk", h, self._table(negatives))
                valid = tf.cast(tf.not_equal(target, PAD_INDEX), tf.float32)
                loss_pos = tf.nn.sigmoid_cross_entropy_with_logits(tf.ones_like(pos), pos)
                loss_neg = tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(tf.zeros_like(neg), neg), -1)
                loss = tf.reduce_sum((loss_pos + loss_neg / cfg.negatives) * valid) / tf.maximum(
                    tf.reduce_sum(valid), 1.0
                )
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
            return loss

        rng = np.random.default_rng(cfg.seed)
        self.history_ = []
        for epoch in range(cfg.epochs if len(inputs) else 0):
            order = rng.permutation(len(inputs))
            total, batches = 0.0, 0
            for lo in range(0, len(order), cfg.batch_size):
                pick = order[lo : lo + cfg.batch_size]
                total += float(step(tf.constant(inputs[pick]), tf.constant(targets[pick])))
                batches += 1
            self.history_.append(total / max(1, batches))
            log.info("sasrec epoch %d: loss %.4f", epoch + 1, self.history_[-1])
        self.epochs_run_ = len(self.history_)
        self._serve = state_function(self.encoder_, cfg.max_len)
        self._queries = recent_interactions(train, cfg.max_len)
        self._seen = (
            train.groupby(train["user_id"].astype(str))["item_id"].agg(lambda s: set(s.astype(str))).to_dict()
        )
        self.fit_seconds_ = time.perf_counter() - started
        return self

    # ------------------------------------------------------------------ scoring (model and artifact alike)

    @property
    def max_len(self) -> int:
        return self.config.max_len

    def item_embeddings(self) -> np.ndarray:
        """float32 (n_items, dim) in ``item_ids_`` order (the table's rows without padding and OOV)."""
        return np.asarray(self._table.embeddings.numpy()[2:], dtype=np.float32)

    def states(self, recent: Sequence[Sequence[str]]) -> np.ndarray:
        """float32 (n, dim): each shopper's state after their recent items (newest first)."""
        from models.tf_runtime import tensorflow

        tf = tensorflow()
        tokens = tokenize(recent, self._index, self.max_len)
        dim = self.config.dim
        out = np.zeros((len(tokens), dim), dtype=np.float32)
        for lo in range(0, len(tokens), SCORE_BATCH):
            out[lo : lo + SCORE_BATCH] = self._serve(tf.constant(tokens[lo : lo + SCORE_BATCH]))[
                "state"
            ].numpy()
        return out

    def recommend(self, user_ids: Sequence[str], k: int, exclude_seen: bool = True) -> dict[str, list[str]]:
        """Top-``k`` by the state after each shopper's recent items before the cutoff; shoppers without
        any get the most frequent items (the model has nothing to attend to)."""
        return sequence_recommend(self, self._queries, user_ids, k, self._seen if exclude_seen else None)


def sequence_recommend(
    model: Any,
    queries: pd.DataFrame,
    user_ids: Sequence[str],
    k: int,
    seen: Mapping[str, set[str]] | None = None,
) -> dict[str, list[str]]:
    """``recommend`` for a model or artifact with ``states``/``item_embeddings``/``item_ids_``/
    ``popularity_``: ``queries`` are ``recent_interactions`` rows (newest first per user); ``seen``
    items are never recommended. Ties go to the smaller item id."""
    from feature_repo.user_recent import grouped_lists

    users = [str(u) for u in user_ids]
    recent = grouped_lists(queries["user_id"].to_numpy(), queries["item_id"].to_numpy(), users)
    item_ids = np.asarray(model.item_ids_, dtype=object)
    index = pd.Index(item_ids)
    embeddings = model.item_embeddings()
    popularity = np.asarray(model.popularity_, dtype=np.float64)
    out: dict[str, list[str]] = {}
    kk = min(k, len(item_ids))
    for lo in range(0, len(users), SCORE_BATCH):
        batch, lists = users[lo : lo + SCORE_BATCH], recent[lo : lo + SCORE_BATCH]
        scores = (model.states(lists) @ embeddings.T).astype(np.float64)
        for row, items in enumerate(lists):
            if not items:  # nothing to attend to: the most frequent items
                scores[row] = popularity
        for row, user in enumerate(batch):
            banned = index.get_indexer(list((seen or {}).get(user, set()) | set(lists[row])))
            scores[row, banned[banned >= 0]] = -np.inf
        top = np.argpartition(-scores, kk - 1, axis=1)[:, :kk] if kk else np.zeros((len(batch), 0), int)
        vals = np.take_along_axis(scores, top, axis=1)
        order = np.lexsort((top, -vals), axis=-1)
        top, vals = np.take_along_axis(top, order, axis=1), np.take_along_axis(vals, order, axis=1)
        for user, cols, v in zip(batch, top, vals, strict=True):
            out[user] = item_ids[cols[np.isfinite(v)]].astype(str).tolist()
    return out
