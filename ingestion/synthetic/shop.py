"""A synthetic shop that behaves like a real one, so models have something true to learn.

What is planted (and tested in ``tests/unit/test_synthetic.py``):

* a category tree with brands and prices; item popularity follows a power law and drifts week to week,
  new items get a launch boost, new items and new users keep arriving;
* each user has a latent taste over departments and leaves, favourite brands and a price preference;
  sessions focus on one leaf of that taste, views turn into carts and purchases at funnel rates of the
  RetailRocket kind (≈96% views, ≈2.5% carts, ≈0.8% purchases), better-fitting items convert more;
* purchases pull in companion items (phone → case), which is the "bought together" signal;
* a share of purchases is rated days later, higher ratings for better-fitting items;
* sessions follow daily and weekly seasonality; activity per user is heavy-tailed (most users have a
  handful of events, a few have hundreds).

Everything is vectorised numpy so a million events take seconds, and everything derives from one seed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from aisle.core.errors import BadInput
from aisle.core.schemas import CATALOG_SCHEMA, EVENT_SCHEMA, USER_SCHEMA
from ingestion.synthetic import catalog_tree as ct

DAY_US = 86_400 * 1_000_000
WEEK_US = 7 * DAY_US
DEFAULT_START = "2026-01-05"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ShopConfig:
    users: int = 5_000
    items: int = 1_000
    days: int = 60
    seed: int = 42
    start: str = DEFAULT_START  # first day of the simulated period (UTC date)
    sessions_per_user_day: float = 0.035  # mean activity; heavy-tailed across users
    views_per_session: float = 3.3
    cart_rate: float = 0.026  # per view, before the fit adjustment
    purchase_rate: float = 0.33  # per cart
    companion_rate: float = 0.35  # purchase pulls its companion into the basket
    rating_rate: float = 0.25  # purchases that are rated later
    wishlist_rate: float = 0.008
    remove_rate: float = 0.12  # carts that are removed again (when not bought)

    def validate(self) -> None:
        if self.users < 1:
            raise BadInput(f"--users must be at least 1 (got {self.users})")
        if self.items < 1:
            raise BadInput(f"--items must be at least 1 (got {self.items})")
        if self.days < 1:
            raise BadInput(f"--days must be at least 1 (got {self.days})")
        if self.users * self.days > 2_000_000_000:
            raise BadInput("--users × --days is too large for one machine; generate in parts")
        try:
            start = self.start_dt
        except ValueError:
            raise BadInput(f"--start must be a date like 2026-01-05 (got {self.start!r})") from None
        end = start + timedelta(days=self.days)
        if end > datetime.now(UTC):
            raise BadInput(
                f"the simulated period would end in the future ({end:%Y-%m-%d}); pass an earlier --start"
            )

    @property
    def start_dt(self) -> datetime:
        return datetime.fromisoformat(self.start).replace(tzinfo=UTC)


@dataclass
class Shop:
    """The generated tables plus the latent truth (kept apart: models never see it, tests do)."""

    catalog: pa.Table
    users: pa.Table
    events: pa.Table
    latent: dict[str, np.ndarray]
    config: ShopConfig

    def summary(self) -> dict[str, object]:
        counts = pc.value_counts(self.events["event_type"]).to_pylist()
        by_type = {c["values"]: c["counts"] for c in counts}
        return {
            "users": self.users.num_rows,
            "items": self.catalog.num_rows,
            "events": self.events.num_rows,
            "events_by_type": dict(sorted(by_type.items())),
            "active_users": len(pc.unique(self.events["user_id"])),
        }


# ----------------------------------------------------------------------------- helpers


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """Bijective 64-bit mixer: distinct inputs give distinct, random-looking ids."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _hex_ids(n: int, salt: int, prefix: str) -> pa.Array:
    """``n`` unique ids like ``ev-3f9a...`` without a Python loop."""
    raw = _splitmix64(np.arange(n, dtype=np.uint64) ^ np.uint64(_splitmix64(np.array([salt]))[0]))
    text = raw.astype(">u8").tobytes().hex().encode()
    hexes = pa.array(np.frombuffer(text, dtype="S16")).cast(pa.string())
    return pc.binary_join_element_wise(pa.scalar(prefix), hexes, "")


def _seq_ids(n: int, prefix: str) -> pa.Array:
    width = max(5, len(str(n)))
    return pa.array([f"{prefix}{i:0{width}d}" for i in range(n)], pa.string())


def _rowwise_choice(cum: np.ndarray, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sample one column per requested row from row-wise cumulative weights (normalised to 1)."""
    out = np.empty(len(rows), dtype=np.int64)
    chunk = 200_000
    for lo in range(0, len(rows), chunk):
        r = rng.random(min(chunk, len(rows) - lo))[:, None]
        out[lo : lo + chunk] = (cum[rows[lo : lo + chunk]] < r).sum(axis=1)
    return np.minimum(out, cum.shape[1] - 1)


def _segment_cumsum(values: np.ndarray, group_starts: np.ndarray) -> np.ndarray:
    """Cumulative sum that restarts at each group (groups are contiguous)."""
    total = np.cumsum(values)
    offsets = np.repeat(
        total[group_starts] - values[group_starts], np.diff(np.append(group_starts, len(values)))
    )
    return total - offsets


def _brand_names(n: int, rng: np.random.Generator) -> list[str]:
    names: set[str] = set()
    syl = ct.SYLLABLES
    while len(names) < n:
        k = int(rng.integers(2, 4))
        names.add("".join(syl[int(i)] for i in rng.integers(0, len(syl), k)).capitalize())
    return sorted(names, key=lambda s: (len(s), s))


# ----------------------------------------------------------------------------- the shop


def generate_shop(config: ShopConfig, progress: Progress | None = None) -> Shop:
    """Simulate the shop. Deterministic for a given config (seed included)."""
    config.validate()
    step = progress or (lambda _msg: None)
    rng = np.random.default_rng(config.seed)
    start_us = int(config.start_dt.timestamp() * 1_000_000)
    end_us = start_us + config.days * DAY_US
    n_weeks = (config.days + 6) // 7

    # --- categories and brands ------------------------------------------------------------
    step("catalog")
    all_leaves = ct.leaves()
    n_leaves = int(np.clip(config.items // 12, 1, len(all_leaves)))
    leaves = all_leaves[:n_leaves]
    tops = sorted({lf[0] for lf in leaves})
    top_of_leaf = np.array([tops.index(lf[0]) for lf in leaves])
    leaf_index = {lf[2]: i for i, lf in enumerate(leaves)}
    companion_leaf = np.empty(n_leaves, dtype=np.int64)
    for i, (_top, _sub, leaf, _p) in enumerate(leaves):
        target = ct.COMPANIONS.get(leaf)
        if target in leaf_index:
            companion_leaf[i] = leaf_index[target]
        else:
            siblings = [j for j in range(n_leaves) if top_of_leaf[j] == top_of_leaf[i] and j != i]
            companion_leaf[i] = siblings[int(rng.integers(len(siblings)))] if siblings else i

    brands_per_top = max(3, min(40, config.items // (10 * len(tops)) + 2))
    brand_names = _brand_names(brands_per_top * len(tops), rng)
    brand_tier = rng.lognormal(0.0, 0.35, len(brand_names))  # price multiplier
    brand_appeal = rng.lognormal(0.0, 0.6, len(brand_names))  # popularity multiplier

    # --- items ------------------------------------------------------------------------------
    n_items = config.items
    leaf_share = 1.0 / np.arange(1, n_leaves + 1) ** 0.5
    leaf_share = rng.permutation(leaf_share / leaf_share.sum())
    item_leaf = np.concatenate(
        [np.arange(n_leaves), rng.choice(n_leaves, n_items - n_leaves, p=leaf_share)]
        if n_items >= n_leaves
        else [np.arange(n_items)]
    )
    item_leaf = np.sort(item_leaf)  # items are grouped by leaf: within-leaf sampling uses contiguous ranges
    leaf_lo = np.searchsorted(item_leaf, np.arange(n_leaves), side="left")
    leaf_hi = np.searchsorted(item_leaf, np.arange(n_leaves), side="right")
    item_top = top_of_leaf[item_leaf]
    brand_rank = rng.zipf(1.6, n_items) - 1
    item_brand = item_top * brands_per_top + np.minimum(brand_rank, brands_per_top - 1)
    leaf_price = np.array([lf[3] for lf in leaves])
    price = leaf_price[item_leaf] * brand_tier[item_brand] * rng.lognormal(0.0, 0.3, n_items)
    price = np.maximum(np.round(price) - 0.01, 0.99)
    log_rel_price = np.log(price / leaf_price[item_leaf])
    popularity = (rng.pareto(1.1, n_items) + 1.0) * brand_appeal[item_brand]
    # most of the catalog predates the period; the first item of each leaf always does
    is_new = rng.random(n_items) < 0.2
    is_new[leaf_lo[leaf_hi > leaf_lo]] = False
    created_us = np.where(
        is_new,
        start_us + (rng.random(n_items) * (end_us - start_us - DAY_US)).astype(np.int64),
        start_us - (rng.random(n_items) * 365 * DAY_US).astype(np.int64),
    )
    in_stock = rng.random(n_items) > 0.06

    # weekly popularity: drift (random walk), launch boost for new items, zero before launch
    week_start = start_us + np.arange(n_weeks) * WEEK_US
    drift = np.exp(np.cumsum(rng.normal(0.0, 0.18, (n_weeks, n_items)), axis=0))
    age_weeks = (week_start[:, None] - created_us[None, :]) / WEEK_US
    launch = 1.0 + 4.0 * np.exp(-np.clip(age_weeks, 0, None) / 2.0) * is_new[None, :]
    week_weight = popularity[None, :] * drift * launch * (age_weeks > 0)
    week_cum = np.cumsum(week_weight, axis=1)

    item_ids = _seq_ids(n_items, "i")
    leaf_paths = [f"{t}>{s}>{lf}" for t, s, lf, _ in leaves]
    titles = [
        f"{brand_names[item_brand[i]]} {leaves[item_leaf[i]][2].rstrip('s')} {i % 97 + 1:02d}"
        for i in range(n_items)
    ]
    catalog = pa.table(
        {
            "item_id": item_ids,
            "title": pa.array(titles),
            "category": pa.array([leaf_paths[j] for j in item_leaf]),
            "brand": pa.array([brand_names[b] for b in item_brand]),
            "price": pa.array(price),
            "in_stock": pa.array(in_stock),
            "created_at": pa.array(created_us, pa.timestamp("us", tz="UTC")),
            "description": pa.array(
                [f"{t}, {leaf_paths[item_leaf[i]].replace('>', ' / ')}." for i, t in enumerate(titles)]
            ),
        },
        schema=CATALOG_SCHEMA,
    )

    # --- users ------------------------------------------------------------------------------
    step("users")
    n_users = config.users
    user_new = rng.random(n_users) < 0.5
    user_created = np.where(
        user_new,
        start_us + (np.sqrt(rng.random(n_users)) * (end_us - start_us - 3600_000_000)).astype(np.int64),
        start_us - (rng.random(n_users) * 730 * DAY_US).astype(np.int64),
    )
    taste_top = rng.dirichlet(np.full(len(tops), 0.25), n_users)
    within = rng.dirichlet(np.full(n_leaves, 0.6), n_users)
    taste_leaf = taste_top[:, top_of_leaf] * within
    taste_leaf /= taste_leaf.sum(axis=1, keepdims=True)
    taste_cum = np.cumsum(taste_leaf, axis=1)
    fav_top = taste_top.argmax(axis=1)
    fav_brands = fav_top[:, None] * brands_per_top + rng.integers(0, brands_per_top, (n_users, 2))
    price_pref = rng.normal(0.0, 0.35, n_users)  # preferred log price relative to the leaf's typical
    activity = rng.lognormal(-0.6, 1.1, n_users)
    activity /= activity.mean()
    user_country = rng.choice(len(ct.COUNTRIES), n_users, p=ct.COUNTRY_WEIGHTS)
    user_device = rng.choice(len(ct.DEVICES), n_users, p=ct.DEVICE_WEIGHTS)
    user_ids = _seq_ids(n_users, "u")
    users = pa.table(
        {
            "user_id": user_ids,
            "created_at": pa.array(user_created, pa.timestamp("us", tz="UTC")),
            "country": pa.array([ct.COUNTRIES[c] for c in user_country]),
            "device": pa.array([ct.DEVICES[d] for d in user_device]),
        },
        schema=USER_SCHEMA,
    )

    # --- sessions ---------------------------------------------------------------------------
    step("sessions")
    first_us = np.maximum(user_created, start_us)
    span_days = (end_us - first_us) / DAY_US
    n_sess = 1 + rng.poisson(activity * span_days * config.sessions_per_user_day)
    s_user = np.repeat(np.arange(n_users), n_sess)
    n_s = len(s_user)
    # session start: day uniform over the user's span, thinned by weekday weight; hour by daily profile
    s_time = np.empty(n_s, dtype=np.int64)
    todo = np.arange(n_s)
    wd = np.array(ct.WEEKDAY_WEIGHTS) / max(ct.WEEKDAY_WEIGHTS)
    while len(todo):
        u = s_user[todo]
        day0 = first_us[u] // DAY_US * DAY_US
        span = (end_us - day0) // DAY_US
        day = day0 + (rng.random(len(todo)) * span).astype(np.int64) * DAY_US
        weekday = (day // DAY_US + 3) % 7  # 1970-01-01 was a Thursday
        keep = rng.random(len(todo)) < wd[weekday]
        s_time[todo[keep]] = day[keep]
        todo = todo[~keep]
    hours = np.array(ct.HOUR_WEIGHTS) / sum(ct.HOUR_WEIGHTS)
    s_time += rng.choice(24, n_s, p=hours) * 3600_000_000 + (rng.random(n_s) * 3600_000_000).astype(np.int64)
    s_time = np.clip(s_time, first_us[s_user], end_us - 3600_000_000)
    order = np.argsort(s_time, kind="stable")
    s_user, s_time = s_user[order], s_time[order]
    s_focus = _rowwise_choice(taste_cum, s_user, rng)
    s_device = np.where(rng.random(n_s) < 0.85, user_device[s_user], rng.choice(3, n_s, p=ct.DEVICE_WEIGHTS))
    session_ids = _hex_ids(n_s, config.seed * 7 + 1, "s-")

    # --- views --------------------------------------------------------------------------------
    step("views")
    n_views = 1 + rng.geometric(1.0 / config.views_per_session, n_s) - 1
    n_views = np.minimum(n_views, 40)
    v_sess = np.repeat(np.arange(n_s), n_views)
    n_v = len(v_sess)
    v_user = s_user[v_sess]
    mode = rng.random(n_v)
    v_leaf = s_focus[v_sess].copy()
    other = mode > 0.78
    v_leaf[other] = _rowwise_choice(taste_cum, v_user[other], rng)
    explore = mode > 0.93
    v_leaf[explore] = rng.choice(n_leaves, int(explore.sum()), p=leaf_share)
    gaps = rng.exponential(50e6, n_v).astype(np.int64) + 2_000_000
    sess_first = np.flatnonzero(np.r_[True, v_sess[1:] != v_sess[:-1]])
    v_time = s_time[v_sess] + _segment_cumsum(gaps, sess_first) - gaps[sess_first].repeat(n_views)
    v_week = np.minimum((v_time - start_us) // WEEK_US, n_weeks - 1)

    # item within leaf: best of three popularity-weighted draws by the user's own utility
    def utility(users_: np.ndarray, items_: np.ndarray) -> np.ndarray:
        brand_bonus = (fav_brands[users_] == item_brand[items_, None]).any(axis=1) * 1.0
        price_fit = -2.0 * np.abs(log_rel_price[items_] - price_pref[users_])
        taste = np.log(taste_leaf[users_, item_leaf[items_]] * n_leaves + 1e-3) * 0.3
        return brand_bonus + price_fit + taste

    best_item = np.zeros(n_v, dtype=np.int64)
    best_score = np.full(n_v, -np.inf)
    for _ in range(3):
        cand = np.empty(n_v, dtype=np.int64)
        for w in range(n_weeks):
            sel = np.flatnonzero(v_week == w)
            if not len(sel):
                continue
            cum = week_cum[w]
            lo_idx, hi_idx = leaf_lo[v_leaf[sel]], leaf_hi[v_leaf[sel]]
            lo = np.where(lo_idx > 0, cum[np.maximum(lo_idx - 1, 0)], 0.0)
            hi = cum[hi_idx - 1]
            pick = np.searchsorted(cum, lo + rng.random(len(sel)) * (hi - lo), side="right")
            cand[sel] = np.clip(pick, lo_idx, hi_idx - 1)
        score = utility(v_user, cand) + rng.gumbel(0.0, 0.7, n_v)
        better = score > best_score
        best_item[better], best_score[better] = cand[better], score[better]
    v_item = best_item
    # an item must exist before anyone looks at it: fall back to the leaf's oldest item
    too_early = created_us[v_item] >= v_time
    v_item[too_early] = leaf_lo[v_leaf[too_early]]
    fit = utility(v_user, v_item)

    # --- funnel -------------------------------------------------------------------------------
    step("funnel")
    fit_z = (fit - fit.mean()) / (fit.std() + 1e-9)
    p_cart = np.clip(config.cart_rate * np.exp(0.9 * fit_z - 0.405), 0, 0.6) * in_stock[v_item]
    carted = rng.random(n_v) < p_cart
    c_idx = np.flatnonzero(carted)
    p_buy = np.clip(config.purchase_rate * np.exp(0.5 * fit_z[c_idx] - 0.125), 0, 0.95)
    bought = rng.random(len(c_idx)) < p_buy
    b_idx = c_idx[bought]
    wish_idx = np.flatnonzero(rng.random(n_v) < config.wishlist_rate * np.exp(0.5 * fit_z))

    # companions: a purchase brings one of the five most popular items of the companion leaf
    comp_leaf = companion_leaf[item_leaf[v_item[b_idx]]]
    span_c = np.minimum(leaf_hi[comp_leaf] - leaf_lo[comp_leaf], 5)
    top_in_leaf = np.argsort(-popularity)  # global order, filtered per leaf below
    leaf_top5 = np.full((n_leaves, 5), -1, dtype=np.int64)
    fill = np.zeros(n_leaves, dtype=np.int64)
    for it in top_in_leaf:
        lf = item_leaf[it]
        if fill[lf] < 5:
            leaf_top5[lf, fill[lf]] = it
            fill[lf] += 1
    pull = rng.random(len(b_idx)) < config.companion_rate
    comp_item = leaf_top5[comp_leaf, rng.integers(0, 5, len(b_idx)) % np.maximum(span_c, 1)]
    pull &= (comp_item >= 0) & (comp_item != v_item[b_idx])
    comp_src = b_idx[pull]
    comp_item = comp_item[pull]
    comp_time = v_time[comp_src] + rng.integers(30_000_000, 400_000_000, len(comp_src))
    ok = created_us[comp_item] < comp_time
    comp_src, comp_item, comp_time = comp_src[ok], comp_item[ok], comp_time[ok]

    # ratings days later, from purchases (the direct ones and the companions)
    r_src = np.flatnonzero(rng.random(len(b_idx)) < config.rating_rate)
    r_time = v_time[b_idx[r_src]] + rng.integers(DAY_US, 10 * DAY_US, len(r_src))
    r_keep = r_time < end_us
    r_src, r_time = r_src[r_keep], r_time[r_keep]
    r_fit = fit_z[b_idx[r_src]]
    rating = np.clip(np.round(3.9 + 0.8 * r_fit + rng.normal(0, 0.8, len(r_src))), 1, 5)

    # --- assemble ------------------------------------------------------------------------------
    step("events")

    def part(
        idx: np.ndarray,
        etype: int,
        t: np.ndarray,
        item: np.ndarray | None = None,
        value: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        it = v_item[idx] if item is None else item
        return {
            "type": np.full(len(idx), etype, dtype=np.int8),
            "view": idx,
            "item": it,
            "t": t,
            "value": price[it] if value is None else value,
        }

    cart_t = v_time[c_idx] + rng.integers(5_000_000, 60_000_000, len(c_idx))
    removed = rng.random(int((~bought).sum())) < config.remove_rate
    removed_idx = c_idx[~bought][removed]
    removed_t = cart_t[~bought][removed] + rng.integers(10_000_000, 600_000_000, len(removed_idx))
    # purchases happen at checkout: after the last view of the session
    last_view_t = v_time[sess_first + n_views - 1]
    buy_t = np.maximum(last_view_t[v_sess[b_idx]], cart_t[bought]) + rng.integers(
        30_000_000, 300_000_000, len(b_idx)
    )
    comp_checkout = np.maximum(comp_time + 60_000_000, last_view_t[v_sess[comp_src]] + 90_000_000)
    parts = [
        part(np.arange(n_v), 0, v_time),
        part(c_idx, 1, cart_t),
        part(removed_idx, 2, removed_t),
        part(b_idx, 3, buy_t),
        part(wish_idx, 4, v_time[wish_idx] + 3_000_000),
        part(b_idx[r_src], 5, r_time, value=rating),
        part(comp_src, 0, comp_time, item=comp_item),
        part(comp_src, 1, comp_time + 20_000_000, item=comp_item),
        part(comp_src, 3, comp_checkout, item=comp_item),
    ]
    etype = np.concatenate([p["type"] for p in parts])
    e_view = np.concatenate([p["view"] for p in parts])
    e_item = np.concatenate([p["item"] for p in parts])
    e_time = np.minimum(np.concatenate([p["t"] for p in parts]), end_us - 1)
    e_value = np.concatenate([p["value"] for p in parts])
    order = np.lexsort((etype, e_time))
    etype, e_view, e_item, e_time, e_value = (a[order] for a in (etype, e_view, e_item, e_time, e_value))
    n_e = len(etype)
    e_sess = v_sess[e_view]
    e_user = v_user[e_view]
    quantity = np.where(etype == 3, 1 + (rng.random(n_e) < 0.1) + (rng.random(n_e) < 0.03), 1).astype(
        np.int32
    )
    is_rating = etype == 5
    type_names = pa.array(["view", "add_to_cart", "remove_from_cart", "purchase", "wishlist", "rating"])
    events = pa.table(
        {
            "event_id": _hex_ids(n_e, config.seed, "ev-"),
            "event_type": type_names.take(pa.array(etype.astype(np.int64))),
            "user_id": user_ids.take(pa.array(e_user)),
            "item_id": item_ids.take(pa.array(e_item)),
            "ts": pa.array(e_time, pa.timestamp("us", tz="UTC")),
            "session_id": pc.if_else(
                pa.array(is_rating), pa.nulls(n_e, pa.string()), session_ids.take(pa.array(e_sess))
            ),
            "value": pa.array(np.round(e_value, 2)),
            "quantity": pa.array(quantity, pa.int32()),
            "device": pa.array(list(ct.DEVICES)).take(pa.array(s_device[e_sess].astype(np.int64))),
            "country": pa.array(list(ct.COUNTRIES)).take(pa.array(user_country[e_user].astype(np.int64))),
            "request_id": pa.nulls(n_e, pa.string()),
        },
        schema=EVENT_SCHEMA,
    )
    latent = {
        "taste_top": taste_top.astype(np.float32),
        "taste_leaf": taste_leaf.astype(np.float32),
        "top_of_leaf": top_of_leaf,
        "item_leaf": item_leaf,
        "item_top": item_top,
        "fav_brands": fav_brands,
        "price_pref": price_pref,
        "companion_leaf": companion_leaf,
        "popularity": popularity,
    }
    return Shop(catalog=catalog, users=users, events=events, latent=latent, config=config)


EVENT_FORMATS = ("parquet", "jsonl", "csv")


def write_shop(shop: Shop, out_dir: Path, event_format: str = "parquet") -> dict[str, str]:
    """Write catalog, users, events (+ latent truth and a manifest). Returns the written paths."""
    if event_format not in EVENT_FORMATS:
        raise BadInput(f"--format must be one of {', '.join(EVENT_FORMATS)} (got {event_format!r})")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "catalog": out_dir / "catalog.parquet",
        "users": out_dir / "users.parquet",
        "events": out_dir / f"events.{event_format}",
        "latent": out_dir / "latent.npz",
        "manifest": out_dir / "manifest.json",
    }
    pq.write_table(shop.catalog, paths["catalog"], coerce_timestamps="us")
    pq.write_table(shop.users, paths["users"], coerce_timestamps="us")
    for fmt in EVENT_FORMATS:  # a previous run in another format must not leave a stale twin behind
        stale = out_dir / f"events.{fmt}"
        if fmt != event_format and stale.exists():
            stale.unlink()
    write_events(shop.events, paths["events"])
    np.savez_compressed(paths["latent"], **shop.latent)  # type: ignore[arg-type]
    manifest = {"config": asdict(shop.config), "summary": shop.summary()}
    paths["manifest"].write_text(json.dumps(manifest, indent=2))
    return {k: str(v) for k, v in paths.items()}


def write_events(events: pa.Table, path: Path) -> None:
    """Write events as Parquet, JSON Lines or CSV, chosen by the file suffix."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        pq.write_table(events, path, coerce_timestamps="us", row_group_size=250_000)
    elif suffix == ".csv":
        import pyarrow.csv as pacsv

        pacsv.write_csv(events.set_column(4, "ts", pc.strftime(events["ts"], "%Y-%m-%dT%H:%M:%SZ")), path)
    elif suffix in (".jsonl", ".json"):
        frame = events.to_pandas()
        frame["ts"] = frame["ts"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # pandas' %S has no fraction
        frame.to_json(path, orient="records", lines=True)
    else:
        raise BadInput(f"cannot write events as {suffix!r}; use .parquet, .jsonl or .csv")
