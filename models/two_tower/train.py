"""Events → a fitted two-tower retrieval model (the ``Recommender`` protocol on top of it).

Training examples: every positive interaction, deduplicated to (user, item) and weighted by the
square root of its strongest event weight (a purchase counts more than a view, but not five times:
on the generated shop raw, square-root and flat weights score the same NDCG, and the middle keeps
purchases ahead without letting a few buyers dominate). Each user keeps at most
``max_examples_per_user`` (the most recent) so heavy users do not fill every batch. The query of an
example is what the user looked like *just before* first touching that item: the distinct items
touched strictly earlier (so the target can never leak into its own history and the model cannot
learn identity). ``cold_start_share`` of the examples get the OOV user id, half of those also lose
history and counters, so that unknown users (new mid-session, or complete strangers) get a trained
query instead of an untrained row. Two simplifications, both deliberate:

* The numeric counters of every example are the user's counters at the end of training, not at the
  example's time. They describe how active a user is, which changes slowly; computing them per
  example would cost a window join per row for little signal.
* A training history is ordered by *first* touch, while serving (``user_queries``) orders by the
  latest touch. They differ only for re-visited items and only matter when a user has more distinct
  items than ``history``; the user tower averages the history, so order beyond that cut is moot.

The loss is TFRS's in-batch softmax with the log-Q correction: in-batch negatives are drawn in
proportion to popularity, so without subtracting log(frequency) the model spends its capacity
pushing popular items down and ends up a worse popularity ranker.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Self

import numpy as np
import pandas as pd

from aisle.core.schemas import EVENT_WEIGHTS, LABEL_GRADES
from feature_repo.user_recent import grouped_lists, recent_interactions
from models.two_tower.model import (
    ITEM_PAD_INDEX,
    PAD,
    USER_NUMERIC,
    USER_OOV_INDEX,
    TwoTowerConfig,
    Vocab,
    build_towers,
    embedding_function,
    query_arrays,
)

#: Event types that say "this user wanted this item" (rating and remove_from_cart do not).
POSITIVE_TYPES: Final = tuple(LABEL_GRADES)  # the graded interactions: view, cart, purchase, ...
#: Which event type each USER_NUMERIC counter counts, over COUNT_WINDOW before ``as_of``.
COUNTED_TYPES: Final = dict(zip(USER_NUMERIC, ("view", "add_to_cart", "purchase"), strict=True))
COUNT_WINDOW: Final = pd.Timedelta(days=30)
REQUIRED_COLUMNS: Final = ("user_id", "item_id", "event_type", "ts")
#: Rows per embedding / scoring batch: bounds memory (1024 users × 20k items × 4 B = 80 MB).
EMBED_BATCH: Final = 4096
SEARCH_BATCH: Final = 1024


def _events(events: pd.DataFrame) -> pd.DataFrame:
    """The four columns this model reads: ids as strings, ts as naive UTC ``datetime64`` (tz-aware
    columns turn into arrays of Timestamp objects in numpy, which is ~50× slower to sort and compare)."""
    missing = [c for c in REQUIRED_COLUMNS if c not in events.columns]
    if missing:
        raise ValueError(f"events lack column(s) {missing}; expected {list(REQUIRED_COLUMNS)}")
    return pd.DataFrame(
        {
            "user_id": events["user_id"].astype(str).to_numpy(dtype=object),
            "item_id": events["item_id"].astype(str).to_numpy(dtype=object),
            "event_type": events["event_type"].astype(str).to_numpy(dtype=object),
            "ts": pd.to_datetime(events["ts"], utc=True).dt.tz_convert(None).to_numpy(),
        }
    )


def _naive_utc(ts: pd.Timestamp) -> pd.Timestamp:
    stamp = pd.Timestamp(ts)
    return stamp if stamp.tzinfo is None else stamp.tz_convert("UTC").tz_localize(None)


def user_queries(events: pd.DataFrame, history: int = 10, as_of: pd.Timestamp | None = None) -> pd.DataFrame:
    """What the user tower sees for each user at ``as_of`` (default: just after the last event).

    One row per user with any event before ``as_of``: ``recent_items`` are the distinct items of
    positive interactions, newest (latest touch) first, at most ``history``; the USER_NUMERIC columns
    count views, carts and purchases in the 30 days before ``as_of`` — the same numbers the Feast
    ``user_features`` view serves, so offline and online queries agree.
    """
    ev = _events(events)
    columns = ["user_id", "recent_items", *USER_NUMERIC]
    if ev.empty:
        return pd.DataFrame({c: pd.Series(dtype=object if c in columns[:2] else np.int64) for c in columns})
    cutoff = ev["ts"].max() + pd.Timedelta(microseconds=1) if as_of is None else _naive_utc(as_of)
    ev = ev.loc[ev["ts"] < cutoff]
    users = np.sort(ev["user_id"].unique())

    last = recent_interactions(events, history, as_of=cutoff)  # the shopper-context contract's list

    recent_window = ev.loc[ev["ts"] >= cutoff - COUNT_WINDOW]
    counts = recent_window.groupby(["user_id", "event_type"]).size().unstack(fill_value=0)
    out = pd.DataFrame({"user_id": users})
    out["recent_items"] = grouped_lists(last["user_id"].to_numpy(), last["item_id"].to_numpy(), users)
    for name, event_type in COUNTED_TYPES.items():
        col = counts[event_type] if event_type in counts.columns else pd.Series(dtype=np.int64)
        out[name] = col.reindex(users, fill_value=0).to_numpy(dtype=np.int64)
    return out


# ---------------------------------------------------------------- training data


@dataclass(frozen=True)
class ItemTable:
    """The item universe (train items ∪ catalog, sorted) with the item tower's raw features."""

    item_ids: np.ndarray
    top_category: np.ndarray
    leaf: np.ndarray
    brand: np.ndarray
    price: np.ndarray


def item_table(events: pd.DataFrame, catalog: pd.DataFrame | None) -> ItemTable:
    """Catalog features per item; without a catalog (or for items missing from it) "" and price 0."""
    sources = [events["item_id"]]
    if catalog is not None:
        sources.append(catalog["item_id"].astype(str))
    ids = np.unique(pd.concat(sources).to_numpy(dtype=str)).astype(object)
    top = np.full(len(ids), PAD, dtype=object)
    leaf = np.full(len(ids), PAD, dtype=object)
    brand = np.full(len(ids), PAD, dtype=object)
    price = np.zeros(len(ids), dtype=np.float64)
    if catalog is not None and len(catalog):
        cat = catalog.assign(item_id=catalog["item_id"].astype(str)).drop_duplicates("item_id", keep="last")
        pos = pd.Index(ids).get_indexer(cat["item_id"])
        if "category" in cat.columns:
            tops = cat["category"].astype("string").str.split(">").str[0].str.strip().fillna(PAD)
            top[pos] = tops.to_numpy(dtype=object)
            leaf[pos] = cat["category"].astype("string").fillna(PAD).to_numpy(dtype=object)
        if "brand" in cat.columns:
            brand[pos] = cat["brand"].astype("string").fillna(PAD).to_numpy(dtype=object)
        if "price" in cat.columns:
            price[pos] = pd.to_numeric(cat["price"], errors="coerce").fillna(0.0).to_numpy(dtype=np.float64)
    return ItemTable(item_ids=ids, top_category=top, leaf=leaf, brand=brand, price=price)


@dataclass(frozen=True)
class Examples:
    """Integer-encoded training examples (one per deduplicated positive (user, item))."""

    user_idx: np.ndarray  # int64 [n]
    recent_idx: np.ndarray  # int64 [n, history]
    numeric: np.ndarray  # float32 [n, 3], raw counters
    item_pos: np.ndarray  # int64 [n], row in the ItemTable
    weight: np.ndarray  # float32 [n]
    probability: np.ndarray  # float32 [n], the item's share of examples (log-Q correction)


def positive_pairs(events: pd.DataFrame) -> pd.DataFrame:
    """(user, item) → time of the first touch and the strongest event weight, sorted by user then time."""
    positive = events.loc[events["event_type"].isin(POSITIVE_TYPES)]
    positive = positive.assign(weight=positive["event_type"].map(EVENT_WEIGHTS).astype(np.float64))
    pairs = positive.groupby(["user_id", "item_id"], sort=False, as_index=False).agg(
        ts=("ts", "min"), weight=("weight", "max")
    )
    return pairs.sort_values(["user_id", "ts", "item_id"], kind="stable").reset_index(drop=True)


def history_windows(pairs: pd.DataFrame, item_idx: np.ndarray, history: int) -> np.ndarray:
    """For each pair, the item indices of up to ``history`` earlier first-touches of the same user
    (newest first, padded with 0). Items first touched at the very same instant are not "before"."""
    n = len(pairs)
    users = pairs["user_id"].to_numpy()
    ts = pairs["ts"].to_numpy()
    idx = np.arange(n)
    new_user = np.r_[True, users[1:] != users[:-1]]
    new_instant = new_user | np.r_[True, ts[1:] != ts[:-1]]
    user_start = np.maximum.accumulate(np.where(new_user, idx, 0))
    instant_start = np.maximum.accumulate(np.where(new_instant, idx, 0))
    prev = instant_start[:, None] - np.arange(1, history + 1)[None, :]
    valid = prev >= user_start[:, None]
    return np.where(valid, item_idx[np.maximum(prev, 0)], 0).astype(np.int64)


def training_examples(
    events: pd.DataFrame,
    queries: pd.DataFrame,
    items: ItemTable,
    vocab: Vocab,
    config: TwoTowerConfig,
) -> Examples:
    """Build the examples; ``events`` as returned by ``_events`` and ``queries`` = user_queries(events)."""
    pairs = positive_pairs(events)
    recent = history_windows(pairs, vocab.item_index(pairs["item_id"].to_numpy()), config.history)
    # keep each user's most recent examples: heavy users would otherwise dominate every batch
    from_end = pairs.groupby("user_id", sort=False).cumcount(ascending=False).to_numpy()
    keep = from_end < config.max_examples_per_user
    pairs, recent = pairs.loc[keep].reset_index(drop=True), recent[keep]

    user_ids = pairs["user_id"].to_numpy()
    user_idx = vocab.user_index(user_ids)
    rng = np.random.default_rng(config.seed)
    numeric = (
        queries.set_index("user_id")[list(USER_NUMERIC)]
        .reindex(user_ids, fill_value=0)
        .to_numpy(dtype=np.float32)
    )
    # Unknown users at serving time: the OOV id must be trained, as "a new user mid-session" (id
    # dropped, history kept) and as "a complete stranger" (id, history and counters dropped).
    draw = rng.random(len(user_idx))
    user_idx[draw < config.cold_start_share] = USER_OOV_INDEX
    stranger = draw < config.cold_start_share / 2
    recent[stranger] = ITEM_PAD_INDEX
    numeric[stranger] = 0.0
    item_pos = pd.Index(items.item_ids).get_indexer(pairs["item_id"]).astype(np.int64)
    counts = np.bincount(item_pos, minlength=len(items.item_ids))
    return Examples(
        user_idx=user_idx,
        recent_idx=recent,
        numeric=numeric,
        item_pos=item_pos,
        weight=np.sqrt(pairs["weight"].to_numpy(dtype=np.float32)),
        probability=(counts[item_pos] / len(item_pos)).astype(np.float32),
    )


def build_vocab(queries: pd.DataFrame, pairs_items: np.ndarray, items: ItemTable) -> Vocab:
    """Vocabularies from the training data and normalisation constants for the numeric inputs."""
    logn = np.log1p(queries[list(USER_NUMERIC)].to_numpy(dtype=np.float64))
    logp = np.log1p(np.maximum(items.price, 0.0))
    vocab_items = tuple(np.unique(pairs_items.astype(str)))
    leaves = tuple(sorted({str(c) for c in items.leaf if c != PAD}))
    leaf_of = pd.Series(items.leaf, index=items.item_ids).reindex(list(vocab_items)).to_numpy()
    leaf_idx = pd.Index(leaves).get_indexer(leaf_of) + 1
    return Vocab(
        users=tuple(queries["user_id"].astype(str)),
        items=vocab_items,
        leaves=leaves,
        item_leaves=(0, 0, *(int(x) for x in leaf_idx)),
        categories=tuple(sorted({str(c) for c in items.top_category if c != PAD})),
        brands=tuple(sorted({str(b) for b in items.brand if b != PAD})),
        numeric_mean=tuple(float(v) for v in logn.mean(axis=0)),
        numeric_std=tuple(float(max(v, 1e-3)) for v in logn.std(axis=0)),
        price_mean=float(logp.mean()),
        price_std=float(max(logp.std(), 1e-3)),
    )


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
        events = _events(train)
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
