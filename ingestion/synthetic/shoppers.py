"""The generated shop's shoppers, reacting to a recommendation list by their latent taste.

The traffic simulator (``aisle simulate traffic``) shows each shopper what the service answered; this
module decides what the shopper does with it. A shopper looks down the list (attention falls with the
position), clicks items in proportion to how well they fit, and carts and buys clicked items with the
generator's funnel chances. Fit is the generator's own :func:`fit` (taste for the item's leaf, favourite
brands, price level, read from ``latent.npz``) plus the shopper's current intent as the generator draws
it: sessions focus on one leaf (here the leaf of their last event in the shop's history), and a purchase
pulls in its companion leaf (here of their last purchase). So a policy that
puts better-fitting items in front truly earns more clicks, carts and purchases, and one that shows
everyone the same bestsellers earns less: the difference an A/B test should find.

Some outcomes come back without the ``request_id`` (bought later from the cart page), so attribution
by the same shopper and item within a window is exercised too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from aisle.core.errors import BadInput
from ingestion.synthetic.funnel import buy_chance, cart_chance
from ingestion.synthetic.simulate import fit

LATENT_KEYS: Final = (
    "companion_leaf",
    "fav_brands",
    "price_pref",
    "taste_leaf",
    "item_brand",
    "log_rel_price",
    "item_leaf",
    "popularity",
)


@dataclass(frozen=True)
class Behaviour:
    """How shoppers treat a recommendation list (the generator's funnel decides cart and purchase)."""

    click_rate: float = 0.10  # chance to click an item of average fit at the top of the list
    position_decay: float = 0.7  # attention at position p is p ** -position_decay
    cart_rate: float = 0.08  # per click: a clicked recommendation is a stronger intent than a browse
    purchase_rate: float = 0.45  # per cart
    untagged_share: float = 0.3  # carts/purchases that come back without the request_id
    focus_bonus: float = 1.0  # an item of the leaf the shopper was last looking at (the session's focus)
    companion_bonus: float = 1.0  # an item of the companion leaf of their last purchase (phone → case)


@dataclass(frozen=True)
class Outcome:
    event_type: str  # click, add_to_cart, purchase
    item_id: str
    value: float | None
    tagged: bool  # carries the request_id


class ShopperModel:
    """Shoppers and items of one generated shop, with the latent truth the models never saw."""

    def __init__(self, shop_dir: Path, behaviour: Behaviour | None = None) -> None:
        latent_path = shop_dir / "latent.npz"
        if not latent_path.exists():
            raise BadInput(
                f"no latent truth at {latent_path}: simulated shoppers need a generated shop "
                "(`aisle data generate`); imported data has no latent taste"
            )
        with np.load(latent_path) as latent:
            missing = [k for k in LATENT_KEYS if k not in latent.files]
            if missing:
                raise BadInput(
                    f"{latent_path} lacks {', '.join(missing)}; it was written by an older generator, "
                    "so generate the shop again"
                )
            arrays = {k: latent[k] for k in LATENT_KEYS}
        catalog = pq.read_table(shop_dir / "catalog.parquet", columns=["item_id", "price", "in_stock"])
        users = pq.read_table(shop_dir / "users.parquet", columns=["user_id", "device", "country"])
        self.behaviour = behaviour or Behaviour()
        self.item_ids = [str(i) for i in catalog["item_id"].to_pylist()]
        self.user_ids = [str(u) for u in users["user_id"].to_pylist()]
        self.devices = [str(d) for d in users["device"].to_pylist()]
        self.countries = [str(c) for c in users["country"].to_pylist()]
        self.item_index = {item: i for i, item in enumerate(self.item_ids)}
        self.user_index = {user: i for i, user in enumerate(self.user_ids)}
        self.price = catalog["price"].to_numpy()
        self.in_stock = catalog["in_stock"].to_numpy(zero_copy_only=False).astype(bool)
        self._latent = arrays
        if len(arrays["item_leaf"]) != len(self.item_ids) or len(arrays["price_pref"]) != len(self.user_ids):
            raise BadInput(f"{latent_path} does not belong to the catalog and users next to it")
        self._focus, self._companion = self._intents(shop_dir)
        self._mean, self._std = self._reference()

    def fit(self, user: np.ndarray, item: np.ndarray) -> np.ndarray:
        """The generator's fit (taste, brand, price) plus the shopper's current intent."""
        a, b = self._latent, self.behaviour
        taste = fit(
            a["fav_brands"], a["price_pref"], a["taste_leaf"], a["item_brand"], a["log_rel_price"],
            a["item_leaf"], user, item,
        )  # fmt: skip
        leaf = a["item_leaf"][item]
        return (
            taste
            + b.focus_bonus * (leaf == self._focus[user])
            + b.companion_bonus * (leaf == self._companion[user])
        )

    def _intents(self, shop_dir: Path) -> tuple[np.ndarray, np.ndarray]:
        """Per shopper, the leaf of their last event (their session's focus, as the generator draws
        sessions) and the companion leaf of their last purchase; -1 where the history has none."""
        focus = np.full(len(self.user_ids), -1)
        companion = np.full(len(self.user_ids), -1)
        path = shop_dir / "events.parquet"
        if not path.exists():  # the shop was written as JSON Lines or CSV: taste alone decides
            return focus, companion
        events = pq.read_table(path, columns=["user_id", "item_id", "event_type", "ts"]).to_pandas()
        events = events.sort_values("ts", kind="stable")
        users = events["user_id"].astype(str).map(self.user_index)
        items = events["item_id"].astype(str).map(self.item_index)
        ok = users.notna() & items.notna()
        frame = pd.DataFrame({"user": users[ok].astype(int), "item": items[ok].astype(int)})
        frame["leaf"] = self._latent["item_leaf"][frame["item"].to_numpy()]
        last = frame.groupby("user")["leaf"].last()
        focus[last.index.to_numpy()] = last.to_numpy()
        bought = frame.loc[(events.loc[ok, "event_type"] == "purchase").to_numpy()]
        last_buy = bought.groupby("user")["leaf"].last()
        companion[last_buy.index.to_numpy()] = self._latent["companion_leaf"][last_buy.to_numpy()]
        return focus, companion

    def _reference(self) -> tuple[float, float]:
        """Fit of what shoppers would see without any model: popular items, shown to anyone."""
        rng = np.random.default_rng(0)
        n = 20_000
        pop = self._latent["popularity"] / self._latent["popularity"].sum()
        values = self.fit(rng.integers(0, len(self.user_ids), n), rng.choice(len(self.item_ids), n, p=pop))
        return float(values.mean()), float(values.std()) or 1.0

    def fit_z(self, user_id: str, items: list[str]) -> np.ndarray:
        """Standardised fit of each listed item for the shopper (unknown items fit like an average one)."""
        u = self.user_index.get(user_id)
        idx = np.array([self.item_index.get(i, -1) for i in items])
        z = np.zeros(len(items))
        known = idx >= 0
        if u is not None and known.any():
            z[known] = (self.fit(np.full(int(known.sum()), u), idx[known]) - self._mean) / self._std
        return z

    def react(self, rng: np.random.Generator, user_id: str, items: list[str]) -> list[Outcome]:
        """What the shopper does with a list shown in this order."""
        if not items:
            return []
        b = self.behaviour
        z = self.fit_z(user_id, items)
        attention = np.arange(1, len(items) + 1, dtype=float) ** -b.position_decay
        clicked = rng.random(len(items)) < np.clip(b.click_rate * attention * np.exp(0.9 * z - 0.405), 0, 0.9)
        stock = np.array([self.in_stock[self.item_index[i]] if i in self.item_index else True for i in items])
        carted = clicked & stock & (rng.random(len(items)) < cart_chance(b.cart_rate, z))
        bought = carted & (rng.random(len(items)) < buy_chance(b.purchase_rate, z))
        untagged = rng.random(len(items)) < b.untagged_share
        out: list[Outcome] = []
        for j in np.flatnonzero(clicked):
            item = items[j]
            out.append(Outcome("click", item, None, True))
            if carted[j]:
                out.append(Outcome("add_to_cart", item, self._price(item), not untagged[j]))
            if bought[j]:
                out.append(Outcome("purchase", item, self._price(item), not untagged[j]))
        return out

    def _price(self, item: str) -> float | None:
        i = self.item_index.get(item)
        return float(self.price[i]) if i is not None else None

    def activity_weights(self, shop_dir: Path) -> np.ndarray:
        """How often each shopper comes back: their history's event count (heavy users visit more)."""
        events = (
            pq.read_table(shop_dir / "events.parquet", columns=["user_id"])
            if (shop_dir / "events.parquet").exists()
            else None
        )
        counts = np.zeros(len(self.user_ids))
        if events is not None:
            import pyarrow.compute as pc

            vc = pc.value_counts(events["user_id"]).to_pylist()
            for row in vc:
                i = self.user_index.get(str(row["values"]))
                if i is not None:
                    counts[i] = row["counts"]
        weights = np.sqrt(counts + 1.0)
        return weights / weights.sum()
