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
from collections.abc import Mapping
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
        spec = self.spec
        index = {c: self._index(c, arrays[c]) for c in spec.string_columns}
        parts = [self.embed[c][index[c]] for c in spec.string_columns]
        if spec.numeric:
            x = np.stack([arrays[c] for c in spec.numeric], axis=1).astype(np.float32)
            x = np.where(np.isfinite(x), x, np.float32(0.0))
            logged = np.sign(x) * np.log1p(np.abs(x))
            parts.append((logged - self.mean) / self.scale)
        hidden = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1, dtype=np.float32)
        for kernel, bias in self.hidden:
            hidden = dense(hidden, kernel, bias, relu=True)
        logit = dense(hidden, *self.logit, relu=False)
        for column in spec.categorical:
            logit += self.wide[column][index[column]]
        crosses = zip(spec.crosses, self.crosses, self.cross_weights, strict=True)
        for (left, right), buckets, weights in crosses:
            logit += weights[buckets(arrays[left], arrays[right])]
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

    def make() -> tuple[Any, float]:
        copy = extract(artifact)
        probe = probe_rows(copy)
        return copy, float(np.max(np.abs(copy.score(probe) - artifact.score(probe))))

    return checked_copy("Wide & Deep", make)
