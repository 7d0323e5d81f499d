"""Fit the Wide & Deep ranker on a labelled frame, and score frames with it.

The loss uses the grades: the target of a row is ``label / max_label`` (purchase 3 → 1, cart or
wishlist 2 → 0.67, view 1 → 0.33, sampled negative 0 → 0) under sigmoid cross-entropy. Its optimum
is the expected normalised grade of the row, which is what a ranker sorted by expected gain (NDCG)
wants; unlike a binary "any interaction" target it keeps purchases above views, and unlike a
listwise loss it does not need the training set grouped into per-user lists, which a Feast
point-in-time training set is not. The score is that sigmoid: an estimate of ``E[label] / max_label``.

Optimizers: FTRL for the wide part (sparse one-hot and cross weights) and Adam for the deep part,
the classic Wide & Deep recipe. Training is a small custom loop over a ``tf.data`` pipeline rather
than ``Model.fit`` because Keras 2's ``fit`` takes one optimizer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, Self

import numpy as np
import pandas as pd

from models.tf_runtime import set_seed, tensorflow
from models.wide_deep.model import (
    Preprocessing,
    RankerSpec,
    WideDeepConfig,
    build_network,
    encode_frame,
    fit_preprocessing,
    frame_rows,
    missing_columns,
    split_variables,
)

log = logging.getLogger(__name__)

#: Rows per call of the scoring function: large enough to amortise the call, small enough for memory.
SCORE_BATCH: Final = 65_536
NDCG_K: Final = 10


class WideDeepRanker:
    """Wide & Deep pointwise ranker over a :class:`RankerSpec`; see the module docstring for the loss.

    After :meth:`fit`: ``fit_seconds_``, ``epochs_run_``, ``examples_`` and ``history_``, a dict of
    per-epoch lists: ``loss`` (training cross-entropy) and, with a validation frame, ``val_loss``,
    ``val_auc`` (label > 0 vs 0) and ``val_ndcg@10`` (graded, per first id column, usually the user).
    """

    def __init__(self, spec: RankerSpec, config: WideDeepConfig = WideDeepConfig()) -> None:
        self.spec = spec
        self.config = config
        self.network: Any = None
        self.preprocessing: Preprocessing | None = None
        self.max_label_: float = 0.0
        self.fit_seconds_: float = 0.0
        self.epochs_run_: int = 0
        self.examples_: int = 0
        self.history_: dict[str, list[float]] = {}
        self._score_fn: Any = None

    # -- training ---------------------------------------------------------------------------------

    def fit(self, frame: pd.DataFrame, label: str = "label", validation: pd.DataFrame | None = None) -> Self:
        """Learn vocabularies and statistics from ``frame``, then train ``config.epochs`` epochs."""
        grades = self._check(frame, label, "training")
        self.max_label_ = float(grades.max())
        target = (grades / self.max_label_).astype(np.float32)
        val_grades = None if validation is None else self._check(validation, label, "validation", True)

        started = time.perf_counter()
        set_seed(self.config.seed)
        arrays = encode_frame(self.spec, frame)
        self.preprocessing = fit_preprocessing(self.spec, arrays, self.config.min_count)
        self.network = build_network(self.spec, self.config, self.preprocessing)
        self._score_fn = make_score_function(self.spec, self.network)
        dataset = self._dataset(arrays, target)
        train_epoch = self._epoch_function()

        self.history_ = {"loss": []}
        for epoch in range(self.config.epochs):
            total, count = train_epoch(dataset)
            self.history_["loss"].append(float(total) / float(count))
            if validation is not None and val_grades is not None:
                for name, value in self._validate(validation, val_grades).items():
                    self.history_.setdefault(name, []).append(value)
            log.info("wide&deep epoch %d: %s", epoch + 1, {k: v[-1] for k, v in self.history_.items()})
        self.epochs_run_ = self.config.epochs
        self.examples_ = len(frame)
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def _check(self, frame: pd.DataFrame, label: str, what: str, constant_ok: bool = False) -> np.ndarray:
        """Refuse frames the model cannot learn from, with the reason in the message."""
        missing = missing_columns(self.spec, frame)
        if label not in frame.columns:
            missing.append(label)
        if missing:
            raise ValueError(f"{what} frame lacks columns {missing}")
        if frame.empty:
            raise ValueError(f"{what} frame is empty")
        grade = frame[label].to_numpy(dtype="float64", na_value=np.nan)
        if not np.isfinite(grade).all():
            raise ValueError(f"{what} column {label!r} has missing or infinite values")
        if (grade < 0).any():
            raise ValueError(f"{what} column {label!r} has negative grades; expected 0 (negative) and up")
        if not constant_ok and grade.min() == grade.max():
            raise ValueError(
                f"{what} column {label!r} is constant ({grade[0]:g}): a ranker needs both relevant "
                "rows and non-interactions"
            )
        return grade

    def _dataset(self, arrays: dict[str, np.ndarray], target: np.ndarray) -> Any:
        """Shuffled index batches gathered from tensors built once: the whole frame is converted to
        TensorFlow a single time, and each epoch only shuffles integers (seeded, so reproducible)."""
        tf = tensorflow()
        columns = {c: tf.constant(a) for c, a in arrays.items()}
        labels = tf.constant(target)

        def gather(index: Any) -> tuple[dict[str, Any], Any]:
            return {c: tf.gather(t, index) for c, t in columns.items()}, tf.gather(labels, index)

        n = len(target)
        return (
            tf.data.Dataset.range(n)
            .shuffle(n, seed=self.config.seed, reshuffle_each_iteration=True)
            .batch(self.config.batch_size)
            .map(gather, num_parallel_calls=1, deterministic=True)
            .prefetch(2)
        )

    def _epoch_function(self) -> Any:
        """One epoch as a ``tf.function``: no Python between steps, and one sync per epoch."""
        tf = tensorflow()
        network = self.network
        wide_vars, deep_vars = split_variables(network)
        wide_opt = tf.keras.optimizers.Ftrl(learning_rate=self.config.wide_learning_rate)
        deep_opt = tf.keras.optimizers.Adam(learning_rate=self.config.learning_rate)
        if wide_vars:
            wide_opt.build(wide_vars)
        deep_opt.build(deep_vars)
        n_wide = len(wide_vars)

        @tf.function
        def train_epoch(dataset: Any) -> tuple[Any, Any]:
            total = tf.constant(0.0)
            count = tf.constant(0.0)
            for features, target in dataset:
                with tf.GradientTape() as tape:
                    logits = network(features, training=True)
                    losses = tf.nn.sigmoid_cross_entropy_with_logits(labels=target, logits=logits)
                    loss = tf.reduce_mean(losses)
                grads = tape.gradient(loss, wide_vars + deep_vars)
                if n_wide:
                    wide_opt.apply_gradients(zip(grads[:n_wide], wide_vars, strict=True))
                deep_opt.apply_gradients(zip(grads[n_wide:], deep_vars, strict=True))
                total += tf.reduce_sum(losses)
                count += tf.cast(tf.size(losses), tf.float32)
            return total, count

        return train_epoch

    def _validate(self, frame: pd.DataFrame, grades: np.ndarray) -> dict[str, float]:
        scores = self.score(frame).astype(np.float64)
        target = np.minimum(grades / self.max_label_, 1.0)
        clipped = np.clip(scores, 1e-7, 1 - 1e-7)
        metrics = {
            "val_loss": float(-np.mean(target * np.log(clipped) + (1 - target) * np.log(1 - clipped))),
            "val_auc": roc_auc(grades > 0, scores),
        }
        if self.spec.ids:
            groups = frame[self.spec.ids[0]].to_numpy()
            metrics[f"val_ndcg@{NDCG_K}"] = mean_ndcg(groups, grades, scores, NDCG_K)
        return metrics

    # -- scoring ----------------------------------------------------------------------------------

    def score(self, frame: pd.DataFrame | Mapping[str, np.ndarray]) -> np.ndarray:
        """Relevance of each row (higher is better): the estimate of ``label / max_label``, float32.

        Unknown ids and categories fall into the OOV bucket; NaN numerics count as 0.
        """
        if self.network is None:
            raise RuntimeError("WideDeepRanker.score called before fit")
        function = self._score_fn
        return score_in_batches(lambda batch: function(batch)["score"].numpy(), self.spec, frame)


def make_score_function(spec: RankerSpec, network: Any) -> Any:
    """The serving computation, ``{column: tensor[None]}`` → sigmoid score, traced once.

    Shared by in-memory scoring and the SavedModel signature, so both run the same graph.
    """
    tf = tensorflow()

    @tf.function(input_signature=[input_signature(spec)])
    def score(features: dict[str, Any]) -> dict[str, Any]:
        return {"score": tf.sigmoid(network(features, training=False))}

    return score


def input_signature(spec: RankerSpec) -> dict[str, Any]:
    tf = tensorflow()
    signature = {c: tf.TensorSpec([None], tf.string, name=c) for c in spec.string_columns}
    return signature | {c: tf.TensorSpec([None], tf.float32, name=c) for c in spec.numeric}


def score_in_batches(
    call: Callable[[dict[str, Any]], np.ndarray],
    spec: RankerSpec,
    frame: pd.DataFrame | Mapping[str, np.ndarray],
) -> np.ndarray:
    """Encode a frame and score it in fixed batches through ``call`` (``{column: tensor}`` → scores).

    In-memory scoring and the SavedModel artifact both go through here, so they batch identically.
    """
    arrays = encode_frame(spec, frame)
    rows = frame_rows(frame)
    out = np.empty(rows, dtype=np.float32)
    if rows == 0:
        return out
    tf = tensorflow()
    for start in range(0, rows, SCORE_BATCH):
        batch = {c: tf.constant(a[start : start + SCORE_BATCH]) for c, a in arrays.items()}
        out[start : start + SCORE_BATCH] = call(batch)
    return out


def roc_auc(relevant: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties averaged); NaN when one class is absent."""
    relevant = np.asarray(relevant, dtype=bool)
    n_pos = int(relevant.sum())
    n_neg = len(relevant) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = pd.Series(scores).rank(method="average").to_numpy()
    return float((ranks[relevant].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def mean_ndcg(groups: np.ndarray, grades: np.ndarray, scores: np.ndarray, k: int) -> float:
    """Mean NDCG@k over groups (users) with at least one positive grade; gain ``2^grade - 1``."""
    frame = pd.DataFrame({"g": groups, "grade": grades, "score": scores})
    frame["gain"] = np.exp2(frame["grade"]) - 1.0

    def dcg(order: str) -> pd.Series:
        ranked = frame.sort_values(["g", order], ascending=[True, False], kind="mergesort")
        position = ranked.groupby("g", sort=False).cumcount().to_numpy()
        discounted = np.where(position < k, ranked["gain"].to_numpy() / np.log2(position + 2.0), 0.0)
        return pd.Series(discounted, index=ranked["g"].to_numpy()).groupby(level=0).sum()

    ideal = dcg("grade")
    actual = dcg("score")
    keep = ideal > 0
    if not keep.any():
        return float("nan")
    return float((actual[keep] / ideal[keep]).mean())
