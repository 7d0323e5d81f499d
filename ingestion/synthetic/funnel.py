"""The synthetic shop's last steps: views turn into carts, purchases, wishlists and ratings, then events.

Continues :mod:`ingestion.synthetic.simulate` with the same generator, in the same fixed order of draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aisle.core.schemas import EVENT_SCHEMA
from ingestion.synthetic import catalog_tree as ct
from ingestion.synthetic.sampling import hex_ids
from ingestion.synthetic.simulate import DAY_US, Catalog, Period, Sessions, Users, Views

#: Event type codes of the assembled events, in the order of their names here.
TYPE_NAMES = ("view", "add_to_cart", "remove_from_cart", "purchase", "wishlist", "rating")
VIEW, CART, REMOVE, PURCHASE, WISHLIST, RATING = range(len(TYPE_NAMES))


@dataclass(frozen=True)
class Rates:
    cart: float  # per view, before the fit adjustment
    purchase: float  # per cart
    companion: float  # purchase pulls its companion into the basket
    rating: float  # purchases that are rated later
    wishlist: float
    remove: float  # carts that are removed again (when not bought)


@dataclass(frozen=True)
class Funnel:
    """Indices into the views (``carted``, ``bought`` ...) and the extra events they lead to."""

    carted: np.ndarray  # views that were carted
    bought: np.ndarray  # mask over ``carted``
    wished: np.ndarray  # views that were wishlisted
    companion_src: np.ndarray  # purchased views that pulled in a companion item ...
    companion_item: np.ndarray  # ... this one ...
    companion_us: np.ndarray  # ... viewed at this time
    rated: np.ndarray  # index into the purchases (``carted[bought]``) that were rated later
    rated_us: np.ndarray
    stars: np.ndarray


def _leaf_top5(catalog: Catalog) -> np.ndarray:
    """The five most popular items of each leaf (-1 where a leaf has fewer)."""
    leaf_top5 = np.full((catalog.n_leaves, 5), -1, dtype=np.int64)
    fill = np.zeros(catalog.n_leaves, dtype=np.int64)
    for it in np.argsort(-catalog.popularity):
        lf = catalog.item_leaf[it]
        if fill[lf] < 5:
            leaf_top5[lf, fill[lf]] = it
            fill[lf] += 1
    return leaf_top5


def _companions(
    catalog: Catalog, views: Views, purchases: np.ndarray, rate: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A purchase brings one of the five most popular items of the companion leaf (phone → case)."""
    comp_leaf = catalog.companion_leaf[catalog.item_leaf[views.item[purchases]]]
    span_c = np.minimum(catalog.leaf_hi[comp_leaf] - catalog.leaf_lo[comp_leaf], 5)
    leaf_top5 = _leaf_top5(catalog)
    pull = rng.random(len(purchases)) < rate
    comp_item = leaf_top5[comp_leaf, rng.integers(0, 5, len(purchases)) % np.maximum(span_c, 1)]
    pull &= (comp_item >= 0) & (comp_item != views.item[purchases])
    comp_src = purchases[pull]
    comp_item = comp_item[pull]
    comp_time = views.time_us[comp_src] + rng.integers(30_000_000, 400_000_000, len(comp_src))
    ok = catalog.created_us[comp_item] < comp_time
    return comp_src[ok], comp_item[ok], comp_time[ok]


def cart_chance(rate: float, fit_z: np.ndarray) -> np.ndarray:
    """Chance that a look at an item becomes a cart, by how well it fits (``fit_z``: standardised fit)."""
    return np.clip(rate * np.exp(0.9 * fit_z - 0.405), 0, 0.6)


def buy_chance(rate: float, fit_z: np.ndarray) -> np.ndarray:
    """Chance that a cart becomes a purchase, by how well the item fits."""
    return np.clip(rate * np.exp(0.5 * fit_z - 0.125), 0, 0.95)


def run_funnel(
    catalog: Catalog, views: Views, period: Period, rates: Rates, rng: np.random.Generator
) -> Funnel:
    """Carts and purchases at funnel rates of the RetailRocket kind; better-fitting items convert more."""
    fit_z = (views.fit - views.fit.mean()) / (views.fit.std() + 1e-9)
    n_v = len(views.item)
    p_cart = cart_chance(rates.cart, fit_z) * catalog.in_stock[views.item]
    carted = np.flatnonzero(rng.random(n_v) < p_cart)
    p_buy = buy_chance(rates.purchase, fit_z[carted])
    bought = rng.random(len(carted)) < p_buy
    purchases = carted[bought]
    wished = np.flatnonzero(rng.random(n_v) < rates.wishlist * np.exp(0.5 * fit_z))
    comp_src, comp_item, comp_time = _companions(catalog, views, purchases, rates.companion, rng)

    # ratings days later, higher for better-fitting items
    rated = np.flatnonzero(rng.random(len(purchases)) < rates.rating)
    rated_us = views.time_us[purchases[rated]] + rng.integers(DAY_US, 10 * DAY_US, len(rated))
    keep = rated_us < period.end_us
    rated, rated_us = rated[keep], rated_us[keep]
    stars = np.clip(np.round(3.9 + 0.8 * fit_z[purchases[rated]] + rng.normal(0, 0.8, len(rated))), 1, 5)
    return Funnel(
        carted=carted,
        bought=bought,
        wished=wished,
        companion_src=comp_src,
        companion_item=comp_item,
        companion_us=comp_time,
        rated=rated,
        rated_us=rated_us,
        stars=stars,
    )


def assemble_events(
    catalog: Catalog,
    users: Users,
    sessions: Sessions,
    views: Views,
    funnel: Funnel,
    period: Period,
    remove_rate: float,
    seed: int,
    rng: np.random.Generator,
) -> pa.Table:
    """Every event type as rows in the event schema, in time order, with checkout after the last view."""
    v_item, v_time = views.item, views.time_us

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
            "value": catalog.price[it] if value is None else value,
        }

    c_idx, bought = funnel.carted, funnel.bought
    b_idx = c_idx[bought]
    cart_t = v_time[c_idx] + rng.integers(5_000_000, 60_000_000, len(c_idx))
    removed = rng.random(int((~bought).sum())) < remove_rate
    removed_idx = c_idx[~bought][removed]
    removed_t = cart_t[~bought][removed] + rng.integers(10_000_000, 600_000_000, len(removed_idx))
    # purchases happen at checkout: after the last view of the session
    last_view_t = v_time[views.session_first + views.per_session - 1]
    buy_t = np.maximum(last_view_t[views.session[b_idx]], cart_t[bought]) + rng.integers(
        30_000_000, 300_000_000, len(b_idx)
    )
    comp_src, comp_item, comp_time = funnel.companion_src, funnel.companion_item, funnel.companion_us
    comp_checkout = np.maximum(comp_time + 60_000_000, last_view_t[views.session[comp_src]] + 90_000_000)
    parts = [
        part(np.arange(len(v_item)), VIEW, v_time),
        part(c_idx, CART, cart_t),
        part(removed_idx, REMOVE, removed_t),
        part(b_idx, PURCHASE, buy_t),
        part(funnel.wished, WISHLIST, v_time[funnel.wished] + 3_000_000),
        part(b_idx[funnel.rated], RATING, funnel.rated_us, value=funnel.stars),
        part(comp_src, VIEW, comp_time, item=comp_item),
        part(comp_src, CART, comp_time + 20_000_000, item=comp_item),
        part(comp_src, PURCHASE, comp_checkout, item=comp_item),
    ]
    etype = np.concatenate([p["type"] for p in parts])
    e_view = np.concatenate([p["view"] for p in parts])
    e_item = np.concatenate([p["item"] for p in parts])
    e_time = np.minimum(np.concatenate([p["t"] for p in parts]), period.end_us - 1)
    e_value = np.concatenate([p["value"] for p in parts])
    order = np.lexsort((etype, e_time))
    etype, e_view, e_item, e_time, e_value = (a[order] for a in (etype, e_view, e_item, e_time, e_value))
    return _event_table(users, sessions, views, etype, e_view, e_item, e_time, e_value, seed, catalog, rng)


def _event_table(
    users: Users,
    sessions: Sessions,
    views: Views,
    etype: np.ndarray,
    e_view: np.ndarray,
    e_item: np.ndarray,
    e_time: np.ndarray,
    e_value: np.ndarray,
    seed: int,
    catalog: Catalog,
    rng: np.random.Generator,
) -> pa.Table:
    n_e = len(etype)
    e_sess = views.session[e_view]
    e_user = views.user[e_view]
    purchase = etype == PURCHASE
    quantity = np.where(purchase, 1 + (rng.random(n_e) < 0.1) + (rng.random(n_e) < 0.03), 1).astype(np.int32)
    is_rating = etype == RATING
    return pa.table(
        {
            "event_id": hex_ids(n_e, seed, "ev-"),
            "event_type": pa.array(list(TYPE_NAMES)).take(pa.array(etype.astype(np.int64))),
            "user_id": users.user_ids.take(pa.array(e_user)),
            "item_id": catalog.item_ids.take(pa.array(e_item)),
            "ts": pa.array(e_time, pa.timestamp("us", tz="UTC")),
            "session_id": pc.if_else(
                pa.array(is_rating), pa.nulls(n_e, pa.string()), sessions.ids.take(pa.array(e_sess))
            ),
            "value": pa.array(np.round(e_value, 2)),
            "quantity": pa.array(quantity, pa.int32()),
            "device": pa.array(list(ct.DEVICES)).take(pa.array(sessions.device[e_sess].astype(np.int64))),
            "country": pa.array(list(ct.COUNTRIES)).take(pa.array(users.country[e_user].astype(np.int64))),
            "request_id": pa.nulls(n_e, pa.string()),
        },
        schema=EVENT_SCHEMA,
    )
