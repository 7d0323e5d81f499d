"""The exported Wide & Deep ranker scored in numpy: same network, same inputs, no TensorFlow call per request.

:func:`numpy_ranker` reads the weights, vocabularies and normalisation constants out of the loaded
SavedModel (:class:`~models.wide_deep.export.WideDeepArtifact`), rebuilds the forward pass of
``models.wide_deep.model.build_network`` in float32, and checks it against the SavedModel's signature on
probe rows (every vocabulary value, empty and unseen strings, NaN / negative / large numerics) before
anyone uses it; a copy that disagrees is refused (None) and the signature keeps scoring.

Only the hashed crosses of the wide part still need TensorFlow's hash (FarmHash fingerprints): bucket
ids are computed by the same op the graph runs (``tf.sparse.cross_hashed``), once per distinct pair of
values, and cached: the pairs are (user's favourite, item's value) over small vocabularies, so after
warm-up no request calls TensorFlow.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

from models.numpy_copy import checked_copy
from models.tf_weights import dense, lookup_tables, variables
from models.wide_deep.model import RankerSpec, encode_frame, frame_rows

#: Rows scored at once (bounds the temporary matrices of a big batch).
CHUNK: Final = 65_536
#: Cached cross buckets before the cache starts over (distinct value pairs seen since load).
CROSS_CACHE_MAX: Final = 200_000
_EPSILON: Final = 1e-7  # Keras backend.epsilon(), Normalization's floor on the standard deviation


class CrossBuckets:
    """``HashedCrossing`` bucket ids of value pairs, computed by TensorFlow's op once per pair."""

    def __init__(self, buckets: int) -> None:
        self.buckets = buckets
        self._known: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def _compute(self, pairs: list[tuple[str, str]]) -> None:
        from models.tf_runtime import tensorflow

        tf = tensorflow()
        left = tf.constant([[a] for a, _ in pairs], dtype=tf.string)
        right = tf.constant([[b] for _, b in pairs], dtype=tf.string)
        crossed = tf.sparse.to_dense(tf.sparse.cross_hashed([left, right], self.buckets))
        ids = tf.reshape(crossed, [-1]).numpy().tolist()
        with self._lock:
            if len(self._known) + len(pairs) > CROSS_CACHE_MAX:
                self._known = {}
            self._known.update(zip(pairs, ids, strict=True))

    def warm(self, left: list[str], right: list[str]) -> None:
        self._compute([(a, b) for a in left for b in right])

    def __call__(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        pairs = list(zip(left.tolist(), right.tolist(), strict=True))
        known = self._known
        missing = list(dict.fromkeys(p for p in pairs if p not in known))
        if missing:
            self._compute(missing)
            known = self._known
        return np.fromiter((known[p] for p in pairs), dtype=np.int64, count=len(pairs))


@dataclass
class NumpyRanker:
    """Scores a frame (or mapping of columns) exactly as :meth:`WideDeepArtifact.score` does."""

    spec: RankerSpec
    vocab: dict[str, dict[str, int]]  # StringLookup: value → index, 0 = OOV
    embed: dict[str, np.ndarray]  # deep embeddings per string column
    wide: dict[str, np.ndarray]  # wide one-hot weights per categorical column, (n, 1)
    cross_weights: list[np.ndarray]  # per cross, (buckets, 1)
    crosses: list[CrossBuckets]
    hidden: list[tuple[np.ndarray, np.ndarray]]
    logit: tuple[np.ndarray, np.ndarray]
    mean: np.ndarray  # float32, per numeric column (after the signed log1p)
    scale: np.ndarray  # float32, max(sqrt(variance), epsilon)

    def score(self, frame: pd.DataFrame | Mapping[str, Any]) -> np.ndarray:
        arrays = encode_frame(self.spec, frame)
        rows = frame_rows(frame)
        out = np.empty(rows, dtype=np.float32)
        for start in range(0, rows, CHUNK):
            part = {c: a[start : start + CHUNK] for c, a in arrays.items()}
            out[start : start + CHUNK] = self._score(part)
        return out

    def _index(self, column: str, values: np.ndarray) -> np.ndarray:
        table = self.vocab[column]
        return np.fromiter((table.get(v, 0) for v in values.tolist()), dtype=np.int64, count=len(values))

    def _score(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        deep, wide = self.partial(arrays, self.spec.columns)
        return self.finish(deep, wide + self.crossed(arrays))

    # The network's first layer is linear in its inputs, so a row's pre-activation is the sum of what
    # each column contributes. Serving uses that (``models.hybrid_numpy``): the item columns' share is
    # computed once per item at load, the shopper's once per request, and only the pair columns per
    # candidate. ``_score`` itself goes through the same three functions, so the probe check at load
    # (``numpy_ranker``) covers them.

    def _first_layer(self) -> tuple[np.ndarray, np.ndarray]:
        return self.hidden[0] if self.hidden else self.logit

    def _rows(self) -> dict[str, slice]:
        """Each input column's rows in the first layer's kernel (string embeddings, then numerics)."""
        cached = self.__dict__.get("_row_slices")
        if cached is None:
            cached, start = {}, 0
            for column in self.spec.string_columns:
                width = self.embed[column].shape[1]
                cached[column] = slice(start, start + width)
                start += width
            for column in self.spec.numeric:
                cached[column] = slice(start, start + 1)
                start += 1
            self._row_slices = cached
        return cached

    def partial(
        self, arrays: Mapping[str, np.ndarray], columns: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        """What ``columns`` (encoded as by ``encode_frame``) contribute to each row: the first layer's
        pre-activation without its bias, float32 (n, units), and the wide logit without crosses (n, 1)."""
        spec, rows = self.spec, self._rows()
        kernel, _ = self._first_layer()
        strings = [c for c in spec.string_columns if c in columns]
        numeric = [c for c in spec.numeric if c in columns]
        n = len(arrays[(strings or numeric)[0]]) if strings or numeric else 0
        deep = np.zeros((n, kernel.shape[1]), dtype=np.float32)
        wide = np.zeros((n, 1), dtype=np.float32)
        for column in strings:
            index = self._index(column, arrays[column])
            deep += self.embed[column][index] @ kernel[rows[column]]
            if column in self.wide:
                wide += self.wide[column][index]
        if numeric:
            x = np.stack([arrays[c] for c in numeric], axis=1).astype(np.float32)
            x = np.where(np.isfinite(x), x, np.float32(0.0))
            logged = np.sign(x) * np.log1p(np.abs(x))
            at = [spec.numeric.index(c) for c in numeric]
            z = (logged - self.mean[at]) / self.scale[at]
            deep += z @ kernel[[rows[c].start for c in numeric]]
        return deep, wide

    def crossed(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        """The wide part's hashed crosses, (n, 1); every cross's two columns must be in ``arrays``."""
        out: np.ndarray | None = None
        crosses = zip(self.spec.crosses, self.crosses, self.cross_weights, strict=True)
        for (left, right), buckets, weights in crosses:
            part = weights[buckets(arrays[left], arrays[right])]
            out = part if out is None else out + part
        return out if out is not None else np.zeros((frame_rows(arrays), 1), dtype=np.float32)

    def finish(self, deep: np.ndarray, wide: np.ndarray) -> np.ndarray:
        """Scores from the summed contributions: first layer's bias and activation, the rest of the
        network, the wide logit, the sigmoid."""
        _, bias = self._first_layer()
        if self.hidden:
            hidden = deep + bias
            hidden = np.maximum(hidden, 0.0, out=hidden)
            for layer_kernel, layer_bias in self.hidden[1:]:
                hidden = dense(hidden, layer_kernel, layer_bias, relu=True)
            logit = dense(hidden, *self.logit, relu=False)
        else:
            logit = deep + bias
        logit = logit + wide
        with np.errstate(over="ignore"):  # exp(-z) overflows to inf for z < -88: the score is 0
            return (1.0 / (1.0 + np.exp(-logit[:, 0]))).astype(np.float32)


def extract(artifact: Any) -> NumpyRanker:
    """The numpy copy of a loaded :class:`WideDeepArtifact` (unchecked; see :func:`numpy_ranker`)."""
    spec: RankerSpec = artifact.spec
    network = artifact.saved_model.network
    weights = variables(network)
    tables = lookup_tables(network)
    if len(tables) != len(spec.string_columns):
        raise ValueError(f"{len(tables)} lookup tables for {len(spec.string_columns)} string columns")
    vocab = {c: table for c, (_, table) in zip(spec.string_columns, tables, strict=True)}  # creation order
    config = artifact.config
    prep = artifact.facts["preprocessing"]
    mean = np.asarray([float(m) for m in prep["numeric_mean"]], dtype=np.float32)
    variance = np.asarray([float(s) * float(s) for s in prep["numeric_std"]], dtype=np.float32)
    crosses = [CrossBuckets(int(config.cross_buckets)) for _ in spec.crosses]
    for (left, right), buckets in zip(spec.crosses, crosses, strict=True):
        buckets.warm(["", *vocab[left]], ["", *vocab[right]])
    return NumpyRanker(
        spec=spec,
        vocab=vocab,
        embed={c: weights[f"embed_{c}/embeddings"] for c in spec.string_columns},
        wide={c: weights[f"wide_{c}/embeddings"] for c in spec.categorical},
        cross_weights=[weights[f"wide_cross_{i}/embeddings"] for i in range(len(spec.crosses))],
        crosses=crosses,
        hidden=[
            (weights[f"deep_dense_{i}/kernel"], weights[f"deep_dense_{i}/bias"])
            for i in range(len(config.hidden))
        ],
        logit=(weights["deep_logit/kernel"], weights["deep_logit/bias"]),
        mean=mean,
        scale=np.maximum(np.sqrt(variance), np.float32(_EPSILON)),
    )


def probe_rows(ranker: NumpyRanker, rows: int = 512, seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs that reach every part of the network: vocabulary values, "", an unseen value; numerics
    that are NaN, negative, zero, small and large."""
    rng = np.random.default_rng(seed)
    columns: dict[str, np.ndarray] = {}
    for column in ranker.spec.string_columns:
        values = np.asarray([*ranker.vocab[column], "", "(never seen)"], dtype=object)
        columns[column] = values[rng.integers(0, len(values), rows)]
    specials = np.asarray([np.nan, -3.0, 0.0, 0.5, 1.0, 1e6], dtype=np.float64)
    for column in ranker.spec.numeric:
        values = rng.lognormal(0.0, 2.0, rows)
        pick = rng.random(rows) < 0.2
        values[pick] = specials[rng.integers(0, len(specials), int(pick.sum()))]
        columns[column] = values
    return columns


def numpy_ranker(artifact: Any) -> NumpyRanker | None:
    """The checked numpy copy of ``artifact``, or None (with a warning) when it cannot be made or
    disagrees with the signature by more than ``models.numpy_copy.TOLERANCE`` on the probe rows."""

    return checked_copy("Wide & Deep", artifact, extract, probe_rows, lambda model, rows: model.score(rows))
