"""The Wide & Deep ranking network, and the one encoding of a frame that training and serving share.

Why Wide & Deep (Cheng et al., 2016) for ranking candidates: the wide part is a linear model over
one-hot categories and hashed crosses, so it *memorises* sharp, sparse interactions such as "this
user's favourite category equals this item's category" after a handful of examples; the deep part
embeds ids and categories and feeds them with the numeric features through an MLP, so it
*generalises* to combinations it has rarely seen. The two logits are summed and trained jointly.

Every preprocessing step lives inside the Keras graph (vocabulary lookups with an OOV bucket,
hashed crosses, NaN → 0, signed log1p, normalisation with constants from the training frame), so
the exported SavedModel takes raw column values and needs no side files to score.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Final

import numpy as np
import pandas as pd

#: Prefix of every layer of the wide part: training gives those variables their own optimizer.
WIDE_PREFIX: Final = "wide_"
#: Vocabulary used when no value of a column reaches the minimum count: every value goes to OOV.
EMPTY_VOCABULARY_TOKEN: Final = "\x00"
#: Column names must also be valid SavedModel signature keys and Keras layer names.
_COLUMN_NAME: Final = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class RankerSpec:
    """Which frame columns the ranker reads, and how.

    ``ids`` (user, item) are high-cardinality strings: vocabulary lookup with an OOV bucket, then an
    embedding in the deep part only (one-hot ids in the wide part would just memorise popularity).
    ``categorical`` strings (None/NaN → ``""``) get an embedding (deep) and a one-hot weight (wide).
    ``numeric`` floats feed the deep part. ``crosses`` pair two id/categorical columns into hashed
    buckets of the wide part.
    """

    ids: tuple[str, ...] = ("user_id", "item_id")
    categorical: tuple[str, ...] = ()
    numeric: tuple[str, ...] = ()
    crosses: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        columns = self.columns
        if not columns:
            raise ValueError("RankerSpec needs at least one id, categorical or numeric column")
        duplicates = sorted({c for c in columns if columns.count(c) > 1})
        if duplicates:
            raise ValueError(f"RankerSpec names these columns more than once: {duplicates}")
        bad = [c for c in columns if not _COLUMN_NAME.match(c)]
        if bad:
            raise ValueError(f"column names must match {_COLUMN_NAME.pattern} (SavedModel keys): {bad}")
        strings = set(self.string_columns)
        for pair in self.crosses:
            if len(pair) != 2 or not set(pair) <= strings:
                raise ValueError(f"cross {pair!r} must name two id or categorical columns of the spec")

    @property
    def string_columns(self) -> tuple[str, ...]:
        return self.ids + self.categorical

    @property
    def columns(self) -> tuple[str, ...]:
        """Every input column, in the order the model and the serving signature use."""
        return self.ids + self.categorical + self.numeric

    def to_json(self) -> dict[str, Any]:
        return {
            "ids": list(self.ids),
            "categorical": list(self.categorical),
            "numeric": list(self.numeric),
            "crosses": [list(pair) for pair in self.crosses],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RankerSpec:
        return cls(
            ids=tuple(data.get("ids", ())),
            categorical=tuple(data.get("categorical", ())),
            numeric=tuple(data.get("numeric", ())),
            crosses=tuple((str(a), str(b)) for a, b in data.get("crosses", ())),
        )


@dataclass(frozen=True)
class WideDeepConfig:
    """Hyper-parameters. ``learning_rate`` is Adam's, for the deep part; ``wide_learning_rate`` is
    FTRL's, for the wide part (the classic recipe: FTRL keeps the sparse linear weights stable while
    Adam moves the embeddings and the MLP). ``min_count``: a value seen fewer times in training
    shares the OOV bucket, so the OOV embedding is *trained* on rare values and unseen ones at
    serving time land on something meaningful rather than on an untouched random vector.
    """

    embedding_dim: int = 16
    hidden: tuple[int, ...] = (64, 32)
    epochs: int = 5
    learning_rate: float = 1e-3
    batch_size: int = 1024
    cross_buckets: int = 10_000
    seed: int = 0
    wide_learning_rate: float = 0.2
    min_count: int = 2

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["hidden"] = list(self.hidden)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WideDeepConfig:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "hidden" in values:
            values["hidden"] = tuple(int(h) for h in values["hidden"])
        return cls(**values)


@dataclass(frozen=True)
class Preprocessing:
    """What the network learns from the training frame before any weight: vocabularies and the
    mean/std of the transformed numerics. Baked into the graph as constants."""

    vocabularies: Mapping[str, Sequence[str]]
    numeric_mean: Sequence[float]
    numeric_std: Sequence[float]

    def to_json(self) -> dict[str, Any]:
        return {
            "vocabulary_sizes": {c: len(v) for c, v in self.vocabularies.items()},
            "numeric_mean": [float(m) for m in self.numeric_mean],
            "numeric_std": [float(s) for s in self.numeric_std],
        }


def missing_columns(spec: RankerSpec, frame: pd.DataFrame | Mapping[str, Any]) -> list[str]:
    return [c for c in spec.columns if c not in frame]


def frame_rows(frame: pd.DataFrame | Mapping[str, Any]) -> int:
    """Rows of a frame, or of a mapping of equal-length columns."""
    if isinstance(frame, pd.DataFrame):
        return len(frame)
    return len(next(iter(frame.values()))) if frame else 0


def encode_frame(spec: RankerSpec, frame: pd.DataFrame | Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Raw column values as the model's inputs: strings (None/NaN → ``""``) and float32 numerics.

    ``frame`` is a DataFrame or a mapping of column → array (serving's per-request path, which skips
    building a frame); both give the same arrays. NaN numerics are left as NaN here on purpose: the graph
    maps them to 0, so a serving client that sends NaN gets the same score as this path.
    """
    missing = missing_columns(spec, frame)
    if missing:
        raise ValueError(f"frame lacks the spec's columns: {missing}")
    arrays: dict[str, np.ndarray] = {}
    if isinstance(frame, pd.DataFrame):
        for column in spec.string_columns:
            series = frame[column]
            arrays[column] = np.where(series.isna().to_numpy(), "", series.astype(str).to_numpy()).astype(
                object
            )
        if spec.numeric:  # one 2-D conversion instead of one per column
            block = frame[list(spec.numeric)].to_numpy(dtype="float64", na_value=np.nan).astype(np.float32)
            for i, column in enumerate(spec.numeric):
                arrays[column] = np.ascontiguousarray(block[:, i])
        return arrays
    for column in spec.string_columns:
        values = np.asarray(frame[column], dtype=object)
        arrays[column] = np.where(pd.isna(values), "", values.astype(str)).astype(object)
    for column in spec.numeric:
        values = np.asarray(frame[column])
        if values.dtype.kind not in "fiub":
            values = np.where(pd.isna(values), np.nan, values)
        arrays[column] = values.astype(np.float64).astype(np.float32)
    return arrays


def transform_numeric(values: np.ndarray) -> np.ndarray:
    """Numpy twin of the graph's numeric transform, for the normalisation statistics.

    Signed log1p for every numeric: counts and prices are heavy-tailed, rates in [0, 1] are barely
    bent, and it is monotone, so nothing is lost for a ranker; non-finite values count as 0.
    """
    x = np.where(np.isfinite(values), values, 0.0).astype(np.float64)
    return np.sign(x) * np.log1p(np.abs(x))


def vocabulary(values: np.ndarray, min_count: int) -> list[str]:
    """Values seen at least ``min_count`` times, most frequent first (ties by value: deterministic)."""
    counts = pd.Series(values).value_counts(sort=False)
    counts = counts[counts >= min_count]
    frame = pd.DataFrame({"value": counts.index.astype(str), "count": counts.to_numpy()})
    ordered = frame.sort_values(["count", "value"], ascending=[False, True], kind="mergesort")
    return ordered["value"].tolist() or [EMPTY_VOCABULARY_TOKEN]


def fit_preprocessing(spec: RankerSpec, arrays: Mapping[str, np.ndarray], min_count: int) -> Preprocessing:
    vocabularies = {c: vocabulary(arrays[c], min_count) for c in spec.string_columns}
    if spec.numeric:
        matrix = transform_numeric(np.stack([arrays[c] for c in spec.numeric], axis=1))
        mean = matrix.mean(axis=0)
        std = matrix.std(axis=0)
        std = np.where(std > 1e-6, std, 1.0)  # a constant column must not divide by zero
    else:
        mean = std = np.zeros(0)
    return Preprocessing(vocabularies, mean.tolist(), std.tolist())


def build_network(spec: RankerSpec, config: WideDeepConfig, prep: Preprocessing) -> Any:
    """A Keras 2 functional model: ``{column: tensor[None]}`` → logit ``[None]`` (wide + deep).

    Layers of the wide part are named ``wide_*`` (see :func:`split_variables`); their weights start
    at zero, as a linear model should, so the wide part starts neutral and only moves where data says.
    """
    from models.tf_runtime import tensorflow

    tf = tensorflow()
    layers = tf.keras.layers
    inputs = {c: tf.keras.Input(shape=(), dtype=tf.string, name=c) for c in spec.string_columns}
    inputs |= {c: tf.keras.Input(shape=(), dtype=tf.float32, name=c) for c in spec.numeric}

    indices = {}
    for column in spec.string_columns:
        lookup = layers.StringLookup(
            vocabulary=list(prep.vocabularies[column]),
            num_oov_indices=1,
            mask_token=None,
            name=f"lookup_{column}",
        )
        indices[column] = lookup(inputs[column])

    deep_parts = []
    for column in spec.string_columns:
        size = len(prep.vocabularies[column]) + 1
        embedding = layers.Embedding(size, config.embedding_dim, name=f"embed_{column}")
        deep_parts.append(embedding(indices[column]))
    if spec.numeric:
        stacked = tf.stack([inputs[c] for c in spec.numeric], axis=1)
        finite = tf.where(tf.math.is_finite(stacked), stacked, tf.zeros_like(stacked))
        logged = tf.sign(finite) * tf.math.log1p(tf.abs(finite))
        normalise = layers.Normalization(
            mean=list(prep.numeric_mean),
            variance=[s * s for s in prep.numeric_std],
            name="normalise_numeric",
        )
        deep_parts.append(normalise(logged))
    hidden = deep_parts[0] if len(deep_parts) == 1 else layers.Concatenate(name="deep_inputs")(deep_parts)
    for i, width in enumerate(config.hidden):
        hidden = layers.Dense(width, activation="relu", name=f"deep_dense_{i}")(hidden)
    logit = layers.Dense(1, name="deep_logit")(hidden)

    wide_parts = []
    for column in spec.categorical:
        size = len(prep.vocabularies[column]) + 1
        weight = layers.Embedding(size, 1, embeddings_initializer="zeros", name=f"{WIDE_PREFIX}{column}")
        wide_parts.append(weight(indices[column]))
    for i, (left, right) in enumerate(spec.crosses):
        crossed = layers.HashedCrossing(config.cross_buckets, name=f"cross_{i}")(
            (inputs[left], inputs[right])
        )
        weight = layers.Embedding(
            config.cross_buckets, 1, embeddings_initializer="zeros", name=f"{WIDE_PREFIX}cross_{i}"
        )
        wide_parts.append(weight(crossed))
    if wide_parts:
        wide = wide_parts[0] if len(wide_parts) == 1 else layers.Add(name="wide_logit")(wide_parts)
        logit = layers.Add(name="logit")([logit, wide])
    output = layers.Reshape((), name="score_logit")(logit)
    return tf.keras.Model(inputs=inputs, outputs=output, name="wide_deep")


def split_variables(network: Any) -> tuple[list[Any], list[Any]]:
    """(wide, deep) trainable variables, so each part can have the optimizer that suits it."""
    wide: list[Any] = []
    deep: list[Any] = []
    for layer in network.layers:
        target = wide if layer.name.startswith(WIDE_PREFIX) else deep
        target.extend(layer.trainable_weights)
    return wide, deep
