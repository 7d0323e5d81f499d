"""The items the service knows, held in memory as arrays: what the business rules and reasons read.

Item features change slowly (stock, price, category), so they live in the service's memory and are
refreshed when a new model version or a new materialization lands, rather than read per request: one
Feast online read of 100 items costs ~9 ms, a numpy lookup microseconds (docs/design.md §5). Titles, when the
lake holds a catalog, make reasons readable ("because you viewed Acme Phone 12").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

from aisle.core.settings import Settings
from feature_repo.tables import ITEM_FEATURES

_F: Final = f"{ITEM_FEATURES}__"
#: The item feature columns this table reads (full Feast names, as the policy's item frame holds them).
CATEGORY: Final = f"{_F}category"
TOP_CATEGORY: Final = f"{_F}top_category"
BRAND: Final = f"{_F}brand"
PRICE: Final = f"{_F}price"
IN_STOCK: Final = f"{_F}in_stock"
COLUMNS: Final = (CATEGORY, TOP_CATEGORY, BRAND, PRICE, IN_STOCK)


def _text(values: pd.Series) -> np.ndarray:
    return values.astype("string").fillna("").to_numpy(dtype=object).astype(str)


@dataclass(frozen=True)
class ItemTable:
    """Row ``i`` describes ``ids[i]``. Unknown stock counts as in stock, unknown price as NaN."""

    ids: np.ndarray  # str
    category: np.ndarray  # full path "A>B>C", lower-cased for matching
    top_category: np.ndarray  # as written, for reasons
    brand: np.ndarray
    price: np.ndarray  # float64, NaN = unknown
    in_stock: np.ndarray  # bool
    titles: Mapping[str, str]
    index: Mapping[str, int]  # id → row
    out_of_stock: frozenset[str]

    @classmethod
    def build(
        cls, item_ids: Sequence[str], features: pd.DataFrame | None, titles: Mapping[str, str] | None = None
    ) -> ItemTable:
        """``features``: indexed by item id, any of ``COLUMNS`` (missing ones count as unknown)."""
        ids = np.asarray([str(i) for i in item_ids], dtype=object).astype(str)
        frame = (features if features is not None else pd.DataFrame()).copy()
        frame.index = frame.index.astype(str)
        frame = frame[~frame.index.duplicated(keep="last")].reindex(ids)
        for col in COLUMNS:
            if col not in frame:
                frame[col] = None
        category = _text(frame[CATEGORY])
        top = _text(frame[TOP_CATEGORY])
        top = np.where(top == "", [c.split(">")[0] for c in category], top) if len(top) else top
        stock = frame[IN_STOCK].astype("boolean").fillna(True).to_numpy(dtype=bool)
        return cls(
            ids=ids,
            category=np.char.lower(category.astype(str)).astype(object) if len(ids) else category,
            top_category=top,
            brand=_text(frame[BRAND]),
            price=pd.to_numeric(frame[PRICE], errors="coerce").to_numpy(dtype=np.float64),
            in_stock=stock,
            titles=dict(titles or {}),
            index={item: i for i, item in enumerate(ids.tolist())},
            out_of_stock=frozenset(ids[~stock].tolist()),
        )

    def __len__(self) -> int:
        return len(self.ids)

    def positions(self, item_ids: Iterable[str]) -> np.ndarray:
        """Row of each id, -1 for ids the table does not hold."""
        index = self.index
        return np.fromiter((index.get(str(i), -1) for i in item_ids), dtype=np.int64)

    def __contains__(self, item_id: object) -> bool:
        return str(item_id) in self.index

    def title(self, item_id: str) -> str:
        """What a shopper would call the item: its title when the catalog has one, else its id."""
        return self.titles.get(item_id) or item_id

    def with_features(self, features: pd.DataFrame) -> ItemTable:
        """The same items with fresher features (e.g. from a new materialization); titles kept."""
        return ItemTable.build(self.ids.tolist(), features, self.titles)


def catalog_titles(catalog: pd.DataFrame | None) -> dict[str, str]:
    """item id → title from a catalog frame (``item_id``, ``title``); {} when there is none."""
    if catalog is None or "title" not in catalog.columns:
        return {}
    rows = catalog.dropna(subset=["title"])
    return dict(zip(rows["item_id"].astype(str), rows["title"].astype(str), strict=True))


def online_item_features(settings: Settings, item_ids: list[str], chunk: int = 2000) -> pd.DataFrame:
    """The item feature view of ``item_ids`` from the online store (full names), indexed by item id;
    items Redis holds nothing for are left out. Raises when the online store cannot be read."""
    from feature_repo.feature_views import ITEM_FEATURES as VIEW
    from feature_repo.store import get_store

    store = get_store(settings)
    refs = [f"{VIEW}:{f.name}" for f in store.get_feature_view(VIEW).features]
    parts = []
    for lo in range(0, len(item_ids), chunk):
        rows = [{"item_id": i} for i in item_ids[lo : lo + chunk]]
        got = store.get_online_features(features=refs, entity_rows=rows, full_feature_names=True).to_dict()
        parts.append(pd.DataFrame(got))
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["item_id"])
    return frame.set_index("item_id").dropna(how="all")
