"""Drift on purpose: the synthetic shop changes under the model from a given day on.

Three kinds, each a step of its own that runs only when asked (so a shop without a shift draws exactly
the same random numbers as before and keeps its bytes):

* ``taste``: from the shift on, every shopper's taste moves towards one department that was liked
  least so far (the latent ``shift_trend``, a weight per leaf); most views after the shift are re-drawn
  in its leaves and every later view's fit is taken against the new taste, so carts and purchases follow;
* ``prices``: every price rises by :data:`PRICE_FACTOR` from the shift on (the catalog holds the new
  prices, events before the shift keep the old ones);
* ``new-items``: a wave of new items (a third of the catalog) launches on the shift day and takes about
  half of the views in its leaves from then on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingestion.synthetic.sampling import seq_ids
from ingestion.synthetic.simulate import DAY_US, WEEK_US, Catalog, Period, Users, Views, pick_items, utility

SHIFTS: Final = ("taste", "prices", "new-items")
#: The shift steps draw from their own generator (seeded with the shop's seed and this), so the views
#: before the shift are exactly those of the same shop without it.
SHIFT_STREAM: Final = 1729
PRICE_FACTOR: Final = 1.4
TASTE_WEIGHT: Final = 0.6  # share of a shopper's taste that follows the trend after the shift
NEW_ITEM_SHARE: Final = 0.33  # new items, as a share of the catalog
NEW_ITEM_VIEW_SHARE: Final = 0.5  # views after the launch that go to a new item of the same leaf


@dataclass(frozen=True)
class Shift:
    kind: str
    at_us: int  # the shift applies to everything at or after this instant

    @classmethod
    def from_day(cls, kind: str, day: int, period: Period) -> Shift:
        return cls(kind=kind, at_us=period.start_us + day * DAY_US)


def trend_leaves(catalog: Catalog, users: Users) -> np.ndarray:
    """The trend everyone's taste moves towards: the department shoppers liked least so far, its leaves
    weighted by their usual share (a niche becomes the fashion)."""
    liked = users.taste_leaf.sum(axis=0)
    n_tops = int(catalog.top_of_leaf.max()) + 1
    per_top = np.bincount(catalog.top_of_leaf, weights=liked, minlength=n_tops)
    top = int(np.argmin(per_top)) if n_tops > 1 else 0
    weights = np.where(catalog.top_of_leaf == top, catalog.leaf_share, 0.0)
    if n_tops == 1:  # one department: the least liked half of its leaves
        weights = np.where(liked <= np.median(liked), catalog.leaf_share, 0.0)
    return weights / weights.sum()


def shifted_taste(users: Users, trend: np.ndarray) -> Users:
    """Users whose taste is now mostly the trend (:data:`TASTE_WEIGHT`), partly their own."""
    taste = (1.0 - TASTE_WEIGHT) * users.taste_leaf + TASTE_WEIGHT * trend[None, :]
    return replace(users, taste_leaf=taste, taste_cum=np.cumsum(taste, axis=1))


def _after(views: Views, shift: Shift) -> np.ndarray:
    return np.flatnonzero(views.time_us >= shift.at_us)


def shift_taste(
    catalog: Catalog, users: Users, views: Views, period: Period, shift: Shift, rng: np.random.Generator
) -> tuple[Views, np.ndarray]:
    """Views after the shift follow the trend with probability :data:`TASTE_WEIGHT` (re-drawn in a
    trend leaf), and every later view's fit is taken against the shifted taste."""
    trend = trend_leaves(catalog, users)
    after = _after(views, shift)
    moved = shifted_taste(users, trend)
    item, fit = views.item.copy(), views.fit.copy()
    if len(after):
        follow = after[rng.random(len(after)) < TASTE_WEIGHT]
        leaf = rng.choice(catalog.n_leaves, len(follow), p=trend)
        week = np.minimum((views.time_us[follow] - period.start_us) // WEEK_US, period.n_weeks - 1)
        picked = pick_items(catalog, moved, views.user[follow], leaf, week, rng)
        too_early = catalog.created_us[picked] >= views.time_us[follow]
        picked[too_early] = catalog.leaf_lo[leaf[too_early]]
        item[follow] = picked
        fit[after] = utility(catalog, moved, views.user[after], item[after])
    return replace(views, item=item, fit=fit), trend


def _extend_catalog(catalog: Catalog, leaves: np.ndarray, at_us: int, rng: np.random.Generator) -> Catalog:
    """The catalog plus one new item per entry of ``leaves``, launched at ``at_us``."""
    n_old, n_new = len(catalog.item_leaf), len(leaves)
    template = catalog.leaf_lo[leaves]  # the leaf's oldest item: brand, category, typical price
    price = np.maximum(np.round(catalog.price[template] * rng.lognormal(0.0, 0.3, n_new)) - 0.01, 0.99)
    typical = catalog.price[template] / np.exp(catalog.log_rel_price[template])
    ids = seq_ids(n_old + n_new, "i").slice(n_old)
    rows = catalog.table.take(pa.array(template))
    titles = pc.binary_join_element_wise(rows["title"], pa.scalar("new"), " ")
    created = np.full(n_new, at_us, dtype=np.int64)
    new_rows = (
        rows.set_column(0, "item_id", ids)
        .set_column(rows.schema.get_field_index("title"), "title", titles)
        .set_column(rows.schema.get_field_index("price"), "price", pa.array(price))
        .set_column(rows.schema.get_field_index("in_stock"), "in_stock", pa.array(np.ones(n_new, bool)))
        .set_column(
            rows.schema.get_field_index("created_at"),
            "created_at",
            pa.array(created, pa.timestamp("us", tz="UTC")),
        )
    )
    popularity = rng.pareto(1.1, n_new) + 1.0
    return replace(
        catalog,
        table=pa.concat_tables([catalog.table, new_rows.cast(catalog.table.schema)]),
        item_ids=pa.concat_arrays([catalog.item_ids, ids]),
        item_leaf=np.r_[catalog.item_leaf, leaves],
        item_top=np.r_[catalog.item_top, catalog.top_of_leaf[leaves]],
        item_brand=np.r_[catalog.item_brand, catalog.item_brand[template]],
        price=np.r_[catalog.price, price],
        log_rel_price=np.r_[catalog.log_rel_price, np.log(price / typical)],
        popularity=np.r_[catalog.popularity, popularity],
        created_us=np.r_[catalog.created_us, created],
        in_stock=np.r_[catalog.in_stock, np.ones(n_new, bool)],
    )


def launch_items(
    catalog: Catalog, users: Users, views: Views, shift: Shift, rng: np.random.Generator
) -> tuple[Catalog, Views]:
    """A wave of new items on the shift day; after it, about half the views in their leaves go to them."""
    n_new = max(catalog.n_leaves, round(NEW_ITEM_SHARE * len(catalog.item_leaf)))
    leaves = np.sort(rng.choice(catalog.n_leaves, n_new, p=catalog.leaf_share))
    grown = _extend_catalog(catalog, leaves, shift.at_us, rng)
    first_new = len(catalog.item_leaf)
    after = _after(views, shift)
    item, fit = views.item.copy(), views.fit.copy()
    if len(after):
        leaf = catalog.item_leaf[item[after]]
        lo = first_new + np.searchsorted(leaves, leaf, side="left")
        hi = first_new + np.searchsorted(leaves, leaf, side="right")
        swap = (hi > lo) & (rng.random(len(after)) < NEW_ITEM_VIEW_SHARE)
        chosen = lo + (rng.random(len(after)) * np.maximum(hi - lo, 1)).astype(np.int64)
        idx = after[swap]
        item[idx] = chosen[swap]
        fit[idx] = utility(grown, users, views.user[idx], item[idx])
    return grown, replace(views, item=item, fit=fit)


def raise_prices(catalog: Catalog, events: pa.Table, shift: Shift) -> tuple[Catalog, pa.Table]:
    """Prices × :data:`PRICE_FACTOR` from the shift on: in events after it, and in the catalog."""
    late = pc.greater_equal(events["ts"], pa.scalar(shift.at_us, pa.timestamp("us", tz="UTC")))
    priced = pc.and_(late, pc.not_equal(events["event_type"], "rating"))
    raised = pc.round(pc.multiply(events["value"], PRICE_FACTOR), 2)
    value = pc.if_else(pc.fill_null(priced, False), raised, events["value"])
    events = events.set_column(events.schema.get_field_index("value"), "value", value)
    new_price = np.round(catalog.price * PRICE_FACTOR, 2)
    table = catalog.table.set_column(
        catalog.table.schema.get_field_index("price"), "price", pa.array(new_price)
    )
    return replace(catalog, table=table, price=new_price), events
