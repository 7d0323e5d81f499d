"""The synthetic shop's named steps: catalog → users → sessions → views → funnel → events (→ describe).

Each step takes the random generator and what the earlier steps produced, and returns a small frozen
record of numpy arrays. The steps draw from the one generator in a fixed order, so the same seed gives
the same shop byte for byte (``tests/unit/test_shop_digest.py`` pins it); reordering draws is a change
of the generated data, not a refactoring.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from aisle.core.schemas import CATALOG_SCHEMA, USER_SCHEMA
from ingestion.synthetic import catalog_tree as ct
from ingestion.synthetic.sampling import brand_names, hex_ids, rowwise_choice, segment_cumsum, seq_ids

DAY_US = 86_400 * 1_000_000
WEEK_US = 7 * DAY_US


@dataclass(frozen=True)
class Period:
    start_us: int
    end_us: int
    n_weeks: int


# ----------------------------------------------------------------------------- 1. catalog


@dataclass(frozen=True)
class Catalog:
    """Categories, brands and items, plus the weekly popularity that drives what gets viewed."""

    table: pa.Table
    item_ids: pa.Array
    top_of_leaf: np.ndarray
    companion_leaf: np.ndarray
    brands_per_top: int
    n_leaves: int
    leaf_share: np.ndarray
    leaf_lo: np.ndarray  # items are grouped by leaf: [leaf_lo, leaf_hi) are one leaf's items
    leaf_hi: np.ndarray
    item_leaf: np.ndarray
    item_top: np.ndarray
    item_brand: np.ndarray
    price: np.ndarray
    log_rel_price: np.ndarray
    popularity: np.ndarray
    created_us: np.ndarray
    in_stock: np.ndarray
    week_cum: np.ndarray  # cumulative item weight per week (drift, launch boost, zero before launch)


def _leaf_companions(
    leaves: list[tuple[str, str, str, float]], top_of_leaf: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """The leaf whose items a purchase pulls in: the planted pair (phone → case) or a random sibling."""
    n_leaves = len(leaves)
    leaf_index = {lf[2]: i for i, lf in enumerate(leaves)}
    companion_leaf = np.empty(n_leaves, dtype=np.int64)
    for i, (_top, _sub, leaf, _p) in enumerate(leaves):
        target = ct.COMPANIONS.get(leaf)
        if target in leaf_index:
            companion_leaf[i] = leaf_index[target]
        else:
            siblings = [j for j in range(n_leaves) if top_of_leaf[j] == top_of_leaf[i] and j != i]
            companion_leaf[i] = siblings[int(rng.integers(len(siblings)))] if siblings else i
    return companion_leaf


def draw_catalog(n_items: int, period: Period, rng: np.random.Generator) -> Catalog:
    """A category tree with brands and prices; power-law popularity that drifts; new items launch."""
    start_us, end_us = period.start_us, period.end_us
    all_leaves = ct.leaves()
    n_leaves = int(np.clip(n_items // 12, 1, len(all_leaves)))
    leaves = all_leaves[:n_leaves]
    tops = sorted({lf[0] for lf in leaves})
    top_of_leaf = np.array([tops.index(lf[0]) for lf in leaves])
    companion_leaf = _leaf_companions(leaves, top_of_leaf, rng)

    brands_per_top = max(3, min(40, n_items // (10 * len(tops)) + 2))
    names = brand_names(brands_per_top * len(tops), rng)
    brand_tier = rng.lognormal(0.0, 0.35, len(names))  # price multiplier
    brand_appeal = rng.lognormal(0.0, 0.6, len(names))  # popularity multiplier

    leaf_share = 1.0 / np.arange(1, n_leaves + 1) ** 0.5
    leaf_share = rng.permutation(leaf_share / leaf_share.sum())
    item_leaf = np.concatenate(
        [np.arange(n_leaves), rng.choice(n_leaves, n_items - n_leaves, p=leaf_share)]
        if n_items >= n_leaves
        else [np.arange(n_items)]
    )
    item_leaf = np.sort(item_leaf)
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

    week_start = start_us + np.arange(period.n_weeks) * WEEK_US
    drift = np.exp(np.cumsum(rng.normal(0.0, 0.18, (period.n_weeks, n_items)), axis=0))
    age_weeks = (week_start[:, None] - created_us[None, :]) / WEEK_US
    launch = 1.0 + 4.0 * np.exp(-np.clip(age_weeks, 0, None) / 2.0) * is_new[None, :]
    week_weight = popularity[None, :] * drift * launch * (age_weeks > 0)

    item_ids = seq_ids(n_items, "i")
    leaf_paths = [f"{t}>{s}>{lf}" for t, s, lf, _ in leaves]
    table = pa.table(
        {
            "item_id": item_ids,
            "title": pa.nulls(n_items, pa.string()),  # titles and descriptions: the describe step
            "category": pa.array([leaf_paths[j] for j in item_leaf]),
            "brand": pa.array([names[b] for b in item_brand]),
            "price": pa.array(price),
            "in_stock": pa.array(in_stock),
            "created_at": pa.array(created_us, pa.timestamp("us", tz="UTC")),
            "description": pa.nulls(n_items, pa.string()),
        },
        schema=CATALOG_SCHEMA,
    )
    return Catalog(
        table=table,
        item_ids=item_ids,
        top_of_leaf=top_of_leaf,
        companion_leaf=companion_leaf,
        brands_per_top=brands_per_top,
        n_leaves=n_leaves,
        leaf_share=leaf_share,
        leaf_lo=leaf_lo,
        leaf_hi=leaf_hi,
        item_leaf=item_leaf,
        item_top=item_top,
        item_brand=item_brand,
        price=price,
        log_rel_price=log_rel_price,
        popularity=popularity,
        created_us=created_us,
        in_stock=in_stock,
        week_cum=np.cumsum(week_weight, axis=1),
    )


# ----------------------------------------------------------------------------- 2. users


@dataclass(frozen=True)
class Users:
    """Shoppers with a latent taste over departments and leaves, favourite brands and a price level."""

    table: pa.Table
    user_ids: pa.Array
    created_us: np.ndarray
    taste_top: np.ndarray
    taste_leaf: np.ndarray
    taste_cum: np.ndarray
    fav_brands: np.ndarray
    price_pref: np.ndarray  # preferred log price relative to the leaf's typical
    activity: np.ndarray  # heavy-tailed, mean 1
    country: np.ndarray
    device: np.ndarray


def draw_users(n_users: int, catalog: Catalog, period: Period, rng: np.random.Generator) -> Users:
    start_us, end_us = period.start_us, period.end_us
    n_tops = int(catalog.top_of_leaf.max()) + 1
    user_new = rng.random(n_users) < 0.5
    created = np.where(
        user_new,
        start_us + (np.sqrt(rng.random(n_users)) * (end_us - start_us - 3600_000_000)).astype(np.int64),
        start_us - (rng.random(n_users) * 730 * DAY_US).astype(np.int64),
    )
    taste_top = rng.dirichlet(np.full(n_tops, 0.25), n_users)
    within = rng.dirichlet(np.full(catalog.n_leaves, 0.6), n_users)
    taste_leaf = taste_top[:, catalog.top_of_leaf] * within
    taste_leaf /= taste_leaf.sum(axis=1, keepdims=True)
    fav_top = taste_top.argmax(axis=1)
    per_top = catalog.brands_per_top
    fav_brands = fav_top[:, None] * per_top + rng.integers(0, per_top, (n_users, 2))
    price_pref = rng.normal(0.0, 0.35, n_users)
    activity = rng.lognormal(-0.6, 1.1, n_users)
    activity /= activity.mean()
    country = rng.choice(len(ct.COUNTRIES), n_users, p=ct.COUNTRY_WEIGHTS)
    device = rng.choice(len(ct.DEVICES), n_users, p=ct.DEVICE_WEIGHTS)
    user_ids = seq_ids(n_users, "u")
    table = pa.table(
        {
            "user_id": user_ids,
            "created_at": pa.array(created, pa.timestamp("us", tz="UTC")),
            "country": pa.array([ct.COUNTRIES[c] for c in country]),
            "device": pa.array([ct.DEVICES[d] for d in device]),
        },
        schema=USER_SCHEMA,
    )
    return Users(
        table=table,
        user_ids=user_ids,
        created_us=created,
        taste_top=taste_top,
        taste_leaf=taste_leaf,
        taste_cum=np.cumsum(taste_leaf, axis=1),
        fav_brands=fav_brands,
        price_pref=price_pref,
        activity=activity,
        country=country,
        device=device,
    )


# ----------------------------------------------------------------------------- 3. sessions


@dataclass(frozen=True)
class Sessions:
    user: np.ndarray  # per session, sorted by start time
    start_us: np.ndarray
    focus_leaf: np.ndarray  # one leaf of the shopper's taste each session is about
    device: np.ndarray
    ids: pa.Array


def _session_days(users: Users, s_user: np.ndarray, period: Period, rng: np.random.Generator) -> np.ndarray:
    """Session day: uniform over the user's span, thinned by the weekday profile (rejection sampling)."""
    first_us = np.maximum(users.created_us, period.start_us)
    s_time = np.empty(len(s_user), dtype=np.int64)
    todo = np.arange(len(s_user))
    wd = np.array(ct.WEEKDAY_WEIGHTS) / max(ct.WEEKDAY_WEIGHTS)
    while len(todo):
        u = s_user[todo]
        day0 = first_us[u] // DAY_US * DAY_US
        span = (period.end_us - day0) // DAY_US
        day = day0 + (rng.random(len(todo)) * span).astype(np.int64) * DAY_US
        weekday = (day // DAY_US + 3) % 7  # 1970-01-01 was a Thursday
        keep = rng.random(len(todo)) < wd[weekday]
        s_time[todo[keep]] = day[keep]
        todo = todo[~keep]
    return s_time


def draw_sessions(
    users: Users, period: Period, sessions_per_user_day: float, seed: int, rng: np.random.Generator
) -> Sessions:
    """Heavy-tailed activity per user; daily and weekly seasonality of session starts."""
    first_us = np.maximum(users.created_us, period.start_us)
    span_days = (period.end_us - first_us) / DAY_US
    n_sess = 1 + rng.poisson(users.activity * span_days * sessions_per_user_day)
    s_user = np.repeat(np.arange(len(users.created_us)), n_sess)
    n_s = len(s_user)
    s_time = _session_days(users, s_user, period, rng)
    hours = np.array(ct.HOUR_WEIGHTS) / sum(ct.HOUR_WEIGHTS)
    s_time += rng.choice(24, n_s, p=hours) * 3600_000_000 + (rng.random(n_s) * 3600_000_000).astype(np.int64)
    s_time = np.clip(s_time, first_us[s_user], period.end_us - 3600_000_000)
    order = np.argsort(s_time, kind="stable")
    s_user, s_time = s_user[order], s_time[order]
    focus = rowwise_choice(users.taste_cum, s_user, rng)
    device = np.where(rng.random(n_s) < 0.85, users.device[s_user], rng.choice(3, n_s, p=ct.DEVICE_WEIGHTS))
    return Sessions(
        user=s_user, start_us=s_time, focus_leaf=focus, device=device, ids=hex_ids(n_s, seed * 7 + 1, "s-")
    )


# ----------------------------------------------------------------------------- 4. views


@dataclass(frozen=True)
class Views:
    session: np.ndarray  # per view, grouped by session
    user: np.ndarray
    item: np.ndarray
    time_us: np.ndarray
    fit: np.ndarray  # the viewer's utility of the item: drives carts, purchases, wishlists, ratings
    session_first: np.ndarray  # index of each session's first view
    per_session: np.ndarray


def utility(catalog: Catalog, users: Users, user: np.ndarray, item: np.ndarray) -> np.ndarray:
    """How well an item fits a shopper (see :func:`fit`)."""
    return fit(
        users.fav_brands,
        users.price_pref,
        users.taste_leaf,
        catalog.item_brand,
        catalog.log_rel_price,
        catalog.item_leaf,
        user,
        item,
    )


def fit(
    fav_brands: np.ndarray,
    price_pref: np.ndarray,
    taste_leaf: np.ndarray,
    item_brand: np.ndarray,
    log_rel_price: np.ndarray,
    item_leaf: np.ndarray,
    user: np.ndarray,
    item: np.ndarray,
) -> np.ndarray:
    """How well an item fits a shopper: favourite brand, price level, taste for its leaf.

    Takes plain arrays so the generator and the traffic simulator's shoppers (which read the same
    arrays back from ``latent.npz``) judge items by one definition.
    """
    brand_bonus = (fav_brands[user] == item_brand[item, None]).any(axis=1) * 1.0
    price_fit = -2.0 * np.abs(log_rel_price[item] - price_pref[user])
    taste = np.log(taste_leaf[user, item_leaf[item]] * taste_leaf.shape[1] + 1e-3) * 0.3
    return brand_bonus + price_fit + taste


def _view_leaves(
    catalog: Catalog, users: Users, sessions: Sessions, v_sess: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Mostly the session's focus leaf, sometimes another leaf of the shopper's taste, rarely anything."""
    v_user = sessions.user[v_sess]
    mode = rng.random(len(v_sess))
    v_leaf = sessions.focus_leaf[v_sess].copy()
    other = mode > 0.78
    v_leaf[other] = rowwise_choice(users.taste_cum, v_user[other], rng)
    explore = mode > 0.93
    v_leaf[explore] = rng.choice(catalog.n_leaves, int(explore.sum()), p=catalog.leaf_share)
    return v_leaf


def pick_items(
    catalog: Catalog,
    users: Users,
    v_user: np.ndarray,
    v_leaf: np.ndarray,
    v_week: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Item within the leaf: the best of three draws weighted by that week's popularity, by utility."""
    n_v = len(v_user)
    best_item = np.zeros(n_v, dtype=np.int64)
    best_score = np.full(n_v, -np.inf)
    for _ in range(3):
        cand = np.empty(n_v, dtype=np.int64)
        for w in range(catalog.week_cum.shape[0]):
            sel = np.flatnonzero(v_week == w)
            if not len(sel):
                continue
            cum = catalog.week_cum[w]
            lo_idx, hi_idx = catalog.leaf_lo[v_leaf[sel]], catalog.leaf_hi[v_leaf[sel]]
            lo = np.where(lo_idx > 0, cum[np.maximum(lo_idx - 1, 0)], 0.0)
            hi = cum[hi_idx - 1]
            pick = np.searchsorted(cum, lo + rng.random(len(sel)) * (hi - lo), side="right")
            cand[sel] = np.clip(pick, lo_idx, hi_idx - 1)
        score = utility(catalog, users, v_user, cand) + rng.gumbel(0.0, 0.7, n_v)
        better = score > best_score
        best_item[better], best_score[better] = cand[better], score[better]
    return best_item


def draw_views(
    catalog: Catalog,
    users: Users,
    sessions: Sessions,
    period: Period,
    views_per_session: float,
    rng: np.random.Generator,
) -> Views:
    n_views = 1 + rng.geometric(1.0 / views_per_session, len(sessions.user)) - 1
    n_views = np.minimum(n_views, 40)
    v_sess = np.repeat(np.arange(len(sessions.user)), n_views)
    v_user = sessions.user[v_sess]
    v_leaf = _view_leaves(catalog, users, sessions, v_sess, rng)
    gaps = rng.exponential(50e6, len(v_sess)).astype(np.int64) + 2_000_000
    sess_first = np.flatnonzero(np.r_[True, v_sess[1:] != v_sess[:-1]])
    v_time = sessions.start_us[v_sess] + segment_cumsum(gaps, sess_first) - gaps[sess_first].repeat(n_views)
    v_week = np.minimum((v_time - period.start_us) // WEEK_US, period.n_weeks - 1)
    v_item = pick_items(catalog, users, v_user, v_leaf, v_week, rng)
    # an item must exist before anyone looks at it: fall back to the leaf's oldest item
    too_early = catalog.created_us[v_item] >= v_time
    v_item[too_early] = catalog.leaf_lo[v_leaf[too_early]]
    return Views(
        session=v_sess,
        user=v_user,
        item=v_item,
        time_us=v_time,
        fit=utility(catalog, users, v_user, v_item),
        session_first=sess_first,
        per_session=n_views,
    )
