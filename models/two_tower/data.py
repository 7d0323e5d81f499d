"""The two-tower's data: the query a shopper presents at a time, and the training examples.

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
  latest touch (the shopper-context contract's recent list). They differ only for re-visited items and
  only matter when a user has more distinct items than ``history``; the user tower averages the
  history, so order beyond that cut is moot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

from aisle.core.schemas import INTERACTION_TYPES
from feature_repo.user_recent import grouped_lists, recent_interactions
from models.data import event_weights
from models.two_tower.model import ITEM_PAD_INDEX, PAD, USER_NUMERIC, USER_OOV_INDEX, TwoTowerConfig, Vocab

#: Event types that say "this user wanted this item" (rating and remove_from_cart do not).
POSITIVE_TYPES: Final = INTERACTION_TYPES  # the graded interactions (view, cart, purchase, ...) and ratings
#: Which event type each USER_NUMERIC counter counts, over COUNT_WINDOW before ``as_of``.
COUNTED_TYPES: Final = dict(zip(USER_NUMERIC, ("view", "add_to_cart", "purchase"), strict=True))
COUNT_WINDOW: Final = pd.Timedelta(days=30)
REQUIRED_COLUMNS: Final = ("user_id", "item_id", "event_type", "ts")


def interaction_frame(events: pd.DataFrame) -> pd.DataFrame:
    """The columns this model reads: ids as strings, ts as naive UTC ``datetime64`` (tz-aware columns
    turn into arrays of Timestamp objects in numpy, which is ~50× slower to sort and compare), and each
    event's interaction weight (``models.data.event_weights``: ratings by their stars)."""
    missing = [c for c in REQUIRED_COLUMNS if c not in events.columns]
    if missing:
        raise ValueError(f"events lack column(s) {missing}; expected {list(REQUIRED_COLUMNS)}")
    return pd.DataFrame(
        {
            "user_id": events["user_id"].astype(str).to_numpy(dtype=object),
            "item_id": events["item_id"].astype(str).to_numpy(dtype=object),
            "event_type": events["event_type"].astype(str).to_numpy(dtype=object),
            "ts": pd.to_datetime(events["ts"], utc=True).dt.tz_convert(None).to_numpy(),
            "weight": event_weights(events),
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
    ev = interaction_frame(events)
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
    if "weight" not in positive.columns:
        positive = positive.assign(weight=event_weights(positive))
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
