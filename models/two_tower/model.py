"""The two towers: what a user and an item look like to the retrieval model, and how they are built.

Training feeds integer indices (the string → index lookups are done once, vectorised, in pandas);
serving feeds strings. So each tower is an integer *core* plus, for the user side, a thin string
wrapper with ``StringLookup`` layers whose index layout is exactly the one :class:`Vocab` computes in
numpy. Both paths therefore produce identical embeddings, and the exported SavedModel needs nothing
but the three raw inputs serving already has (user id, recent item ids, Feast counters).

Design choices, and why:

* The item-id embedding table is *shared* between the history side of the user tower and the item
  tower. Most users have a handful of events, so an item's row gets far more gradient when it is
  trained both as "something this user touched" and as "something this user picked next"; sharing
  also halves the largest table.
* Besides the required top-level category, brand and price, an item carries its full category path
  (the leaf, "A>B>C"), in both towers: tastes live at the leaf level, and an item seen a few times
  borrows what its leaf has learned. On the generated shop it lifts NDCG@10 by about a point.
* Unknown ids (OOV) never get a row of their own in the item table: they are masked to zero, so a
  catalog item unseen in training is described by its catalog features alone, and an unknown item
  in a history is skipped by the mean instead of adding an untrained vector.
  The user table keeps an OOV row, which training teaches to be "an unknown user" by giving a share
  of examples the OOV id (see ``train.py``).
* Both towers end L2-normalised and the loss divides by a temperature: unnormalised dot products let
  a few popular items win by norm alone, which is the popularity echo the log-Q correction is there
  to remove. 0.3 was best of 0.05–1.0 on the generated shop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

#: Counters read from the Feast ``user_features`` view; the names must match USER_FEATURES_SCHEMA.
USER_NUMERIC: Final = ("views_30d", "carts_30d", "purchases_30d")
#: Padding token in ``recent_items`` (and the StringLookup mask token of the item vocabulary).
PAD: Final = ""
#: Index layout shared by the numpy lookups and the Keras StringLookup layers.
ITEM_PAD_INDEX: Final = 0  # mask token ""
ITEM_OOV_INDEX: Final = 1  # items are 2.. (mask first, then one OOV bucket)
USER_OOV_INDEX: Final = 0  # users are 1.. (no mask token, one OOV bucket)


@dataclass(frozen=True)
class TwoTowerConfig:
    """Hyper-parameters; everything a fit depends on besides the data (so two fits can be compared)."""

    embedding_dim: int = 32
    epochs: int = 5
    learning_rate: float = 0.05
    batch_size: int = 1024
    history: int = 10  # recent items fed to the user tower
    seed: int = 0
    temperature: float = 0.3  # softmax temperature over cosine scores
    max_examples_per_user: int = 200  # the most recent ones; heavy users would otherwise dominate
    cold_start_share: float = 0.3  # examples trained as an unknown user (teaches the OOV query)


@dataclass(frozen=True)
class Vocab:
    """Vocabularies and normalisation constants fixed at fit time (and saved with the model)."""

    users: tuple[str, ...]
    items: tuple[str, ...]
    categories: tuple[str, ...]  # top-level ("A" of "A>B>C")
    brands: tuple[str, ...]
    leaves: tuple[str, ...]  # full category paths
    item_leaves: tuple[int, ...]  # leaf index (0 = unknown) per item index: pad, OOV, then items
    numeric_mean: tuple[float, ...]  # of log1p(counter), per USER_NUMERIC
    numeric_std: tuple[float, ...]
    price_mean: float  # of log1p(price)
    price_std: float

    def user_index(self, user_ids: Sequence[str] | np.ndarray) -> np.ndarray:
        """Same numbers as the user StringLookup: OOV → 0, known users → 1.."""
        idx = pd.Index(self.users).get_indexer(np.asarray(user_ids, dtype=object))
        return np.where(idx >= 0, idx + 1, USER_OOV_INDEX).astype(np.int64)

    def item_index(self, item_ids: np.ndarray) -> np.ndarray:
        """Same numbers as the item StringLookup: "" → 0, OOV → 1, known items → 2.. (any shape)."""
        flat = np.asarray(item_ids, dtype=object).ravel()
        idx = pd.Index(self.items).get_indexer(flat)
        out = np.where(idx >= 0, idx + 2, ITEM_OOV_INDEX)
        out[flat == PAD] = ITEM_PAD_INDEX
        return out.astype(np.int64).reshape(np.shape(item_ids))

    @staticmethod
    def _token_index(vocab: tuple[str, ...], values: np.ndarray) -> np.ndarray:
        idx = pd.Index(vocab).get_indexer(np.asarray(values, dtype=object))
        return np.where(idx >= 0, idx + 1, 0).astype(np.int64)  # 0 = unknown / missing

    def category_index(self, values: np.ndarray) -> np.ndarray:
        return self._token_index(self.categories, values)

    def leaf_index(self, values: np.ndarray) -> np.ndarray:
        return self._token_index(self.leaves, values)

    def brand_index(self, values: np.ndarray) -> np.ndarray:
        return self._token_index(self.brands, values)

    def price_feature(self, price: np.ndarray) -> np.ndarray:
        """log1p then standardised: prices are log-normal, and a raw price would swamp the other inputs."""
        logp = np.log1p(np.maximum(np.nan_to_num(np.asarray(price, dtype=np.float64)), 0.0))
        return ((logp - self.price_mean) / self.price_std).astype(np.float32)

    def to_json(self) -> dict[str, Any]:
        return {
            "users": list(self.users),
            "items": list(self.items),
            "categories": list(self.categories),
            "brands": list(self.brands),
            "leaves": list(self.leaves),
            "item_leaves": list(self.item_leaves),
            "numeric_mean": list(self.numeric_mean),
            "numeric_std": list(self.numeric_std),
            "price_mean": self.price_mean,
            "price_std": self.price_std,
        }


def query_arrays(queries: pd.DataFrame, history: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A ``user_queries()``-shaped frame → (user ids [n], recent items [n, history] padded with "",
    raw counters float32 [n, 3]): exactly the serving signature's inputs.

    Missing histories (None/NaN) are empty; missing counters are 0, as for a user Feast does not know.
    """
    missing = [c for c in ("user_id", "recent_items", *USER_NUMERIC) if c not in queries.columns]
    if missing:
        raise ValueError(f"user queries lack column(s) {missing}; build them with user_queries()")
    n = len(queries)
    users = queries["user_id"].astype(str).to_numpy(dtype=object)
    recent = np.full((n, history), PAD, dtype=object)
    for row, items in enumerate(queries["recent_items"].to_numpy()):
        if items is None or (isinstance(items, float) and np.isnan(items)):
            continue
        top = [str(i) for i in list(items)[:history]]
        recent[row, : len(top)] = top
    numeric = queries[list(USER_NUMERIC)].to_numpy(dtype=np.float64, na_value=0.0)
    return users, recent, np.nan_to_num(numeric).astype(np.float32)


# ---------------------------------------------------------------- Keras (imported lazily)


@dataclass
class Towers:
    """The Keras pieces of one model: integer cores for training, a string user tower for serving."""

    user_core: Any  # (user_idx [B], recent_idx [B, H], numeric [B, 3]) → [B, d]
    item_core: Any  # (item_idx, category_idx, brand_idx, price, leaf_idx; each [B]) → [B, d]
    user_tower: Any  # (user_id string [B], recent_items string [B, H], user_numeric [B, 3]) → [B, d]


@dataclass
class _Shared:
    """Tables both towers read: an item means the same thing in a history and as a candidate."""

    item_id: Any
    leaf: Any
    item_leaves: Any  # constant: item index → leaf index

    def item_vector(self, tf: Any, item_idx: Any) -> Any:
        """Id + leaf embedding; the id part is zero for padding and OOV (they have no trained row)."""
        known = tf.cast(item_idx > ITEM_OOV_INDEX, tf.float32)[..., None]
        return self.item_id(item_idx) * known + self.leaf(tf.gather(self.item_leaves, item_idx))


def build_towers(vocab: Vocab, config: TwoTowerConfig) -> Towers:
    """Build both towers; call after ``set_seed`` so initial weights are reproducible."""
    from models.tf_runtime import tensorflow

    tf = tensorflow()
    seeds = iter(range(config.seed * 1000, config.seed * 1000 + 1000))

    def embedding(rows: int, dim: int, name: str) -> Any:
        # one seeded initializer per table: a reused unseeded one gives every table the same values
        init = tf.keras.initializers.RandomNormal(stddev=0.1, seed=next(seeds))
        return tf.keras.layers.Embedding(rows, dim, embeddings_initializer=init, name=name)

    d = config.embedding_dim
    shared = _Shared(
        item_id=embedding(len(vocab.items) + 2, d, "item_id"),
        leaf=embedding(len(vocab.leaves) + 1, d, "leaf"),
        item_leaves=tf.constant(list(vocab.item_leaves), dtype=tf.int64),
    )
    user_core = _user_core(tf, vocab, config, shared, embedding(len(vocab.users) + 1, d, "user_id"))
    item_core = _item_core(
        tf,
        config,
        shared,
        embedding(len(vocab.categories) + 1, 8, "category"),
        embedding(len(vocab.brands) + 1, 8, "brand"),
    )
    return Towers(
        user_core=user_core, item_core=item_core, user_tower=_string_user_tower(tf, vocab, config, user_core)
    )


def _user_core(tf: Any, vocab: Vocab, config: TwoTowerConfig, shared: _Shared, user_table: Any) -> Any:
    """User id + masked mean of the history items + log-scaled counters → dense → unit vector."""
    layers, d = tf.keras.layers, config.embedding_dim
    user_idx = layers.Input(shape=(), dtype=tf.int64, name="user_idx")
    recent_idx = layers.Input(shape=(config.history,), dtype=tf.int64, name="recent_idx")
    numeric = layers.Input(shape=(len(USER_NUMERIC),), dtype=tf.float32, name="numeric")
    mask = tf.cast(recent_idx > ITEM_OOV_INDEX, tf.float32)[..., None]  # padding and unknown items
    summed = tf.reduce_sum(shared.item_vector(tf, recent_idx) * mask, axis=1)
    history_vec = summed / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)
    scaled = (tf.math.log1p(tf.maximum(numeric, 0.0)) - list(vocab.numeric_mean)) / list(vocab.numeric_std)
    numeric_vec = layers.Dense(8, activation="relu", name="numeric_dense")(scaled)
    hidden = layers.Dense(2 * d, activation="relu", name="user_hidden")(
        layers.Concatenate()([user_table(user_idx), history_vec, numeric_vec])
    )
    out = tf.math.l2_normalize(layers.Dense(d, name="user_out")(hidden), axis=-1)
    return tf.keras.Model([user_idx, recent_idx, numeric], out, name="user_core")


def _item_core(tf: Any, config: TwoTowerConfig, shared: _Shared, category: Any, brand: Any) -> Any:
    """Item id + leaf + top category + brand + standardised log price → dense → unit vector."""
    layers, d = tf.keras.layers, config.embedding_dim
    item_idx = layers.Input(shape=(), dtype=tf.int64, name="item_idx")
    category_idx = layers.Input(shape=(), dtype=tf.int64, name="category_idx")
    brand_idx = layers.Input(shape=(), dtype=tf.int64, name="brand_idx")
    price = layers.Input(shape=(), dtype=tf.float32, name="price")
    leaf_idx = layers.Input(shape=(), dtype=tf.int64, name="leaf_idx")
    known = tf.cast(item_idx > ITEM_OOV_INDEX, tf.float32)[:, None]
    item_vec = shared.item_id(item_idx) * known + shared.leaf(leaf_idx)  # leaf from the catalog row
    hidden = layers.Dense(2 * d, activation="relu", name="item_hidden")(
        layers.Concatenate()([item_vec, category(category_idx), brand(brand_idx), price[:, None]])
    )
    out = tf.math.l2_normalize(layers.Dense(d, name="item_out")(hidden), axis=-1)
    return tf.keras.Model([item_idx, category_idx, brand_idx, price, leaf_idx], out, name="item_core")


def _string_user_tower(tf: Any, vocab: Vocab, config: TwoTowerConfig, user_core: Any) -> Any:
    """The user core behind StringLookups that reproduce Vocab.user_index / item_index exactly."""
    layers = tf.keras.layers
    user_id = layers.Input(shape=(), dtype=tf.string, name="user_id")
    recent_items = layers.Input(shape=(config.history,), dtype=tf.string, name="recent_items")
    user_numeric = layers.Input(shape=(len(USER_NUMERIC),), dtype=tf.float32, name="user_numeric")
    user_lookup = layers.StringLookup(
        vocabulary=list(vocab.users), mask_token=None, num_oov_indices=1, name="user_lookup"
    )
    item_lookup = layers.StringLookup(
        vocabulary=list(vocab.items), mask_token=PAD, num_oov_indices=1, name="item_lookup"
    )
    embedding = user_core([user_lookup(user_id), item_lookup(recent_items), user_numeric])
    return tf.keras.Model([user_id, recent_items, user_numeric], embedding, name="user_tower")


def embedding_function(user_tower: Any, history: int) -> Any:
    """The user tower as a ``tf.function`` with a fixed signature: one trace, no Keras predict overhead.

    The same function is what ``export`` saves as the SavedModel's serving signature.
    """
    from models.tf_runtime import tensorflow

    tf = tensorflow()

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="user_id"),
            tf.TensorSpec([None, history], tf.string, name="recent_items"),
            tf.TensorSpec([None, len(USER_NUMERIC)], tf.float32, name="user_numeric"),
        ]
    )
    def serve(user_id: Any, recent_items: Any, user_numeric: Any) -> dict[str, Any]:
        return {"embedding": user_tower([user_id, recent_items, user_numeric], training=False)}

    return serve
