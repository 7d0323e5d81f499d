"""The lake's catalog as the storefront and search see it: every item's title, category, brand, price,
stock and description, held in memory and re-read when the catalog file changes.

The policy's item table (``serving.items``) holds only what ranking and the rules read, and only the
items the model knows; the storefront shows every catalog item, with its words.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from aisle.core.settings import Settings

log = logging.getLogger("bentoml.aisle.catalog")

FIELDS: Final = ("title", "category", "brand", "price", "in_stock", "description")


def catalog_file(settings: Settings) -> Path:
    from ingestion.lake import EventLake

    return EventLake(settings.paths.lake).catalog_path


@dataclass(frozen=True)
class CatalogSnapshot:
    frame: pd.DataFrame  # indexed by item_id (str), FIELDS columns
    stamp: float | None  # the file's mtime when read

    def __len__(self) -> int:
        return len(self.frame)

    def __contains__(self, item_id: object) -> bool:
        return str(item_id) in self.frame.index

    def details(self, item_ids: Iterable[str]) -> list[dict[str, Any]]:
        """One JSON-able record per known id, in the order given; unknown ids are left out."""
        ids = [str(i) for i in item_ids]
        known = [i for i in ids if i in self.frame.index]
        rows = self.frame.loc[known]
        out = []
        for item_id, row in zip(known, rows.itertuples(index=False), strict=True):
            record: dict[str, Any] = {"item_id": item_id}
            for name, value in zip(FIELDS, row, strict=True):
                record[name] = None if pd.isna(value) else (value.item() if hasattr(value, "item") else value)
            record["title"] = record.get("title") or item_id
            out.append(record)
        return out

    def categories(self, item_ids: Iterable[str]) -> np.ndarray:
        return self.frame["category"].reindex([str(i) for i in item_ids]).fillna("").to_numpy(dtype=str)


def _empty() -> CatalogSnapshot:
    return CatalogSnapshot(pd.DataFrame(columns=list(FIELDS), index=pd.Index([], name="item_id")), None)


def read_snapshot(settings: Settings) -> CatalogSnapshot:
    """The lake's catalog now (empty when the lake holds none)."""
    path = catalog_file(settings)
    try:
        stamp = path.stat().st_mtime
        import pyarrow.parquet as pq

        table = pq.read_table(path)
    except OSError:
        return _empty()
    frame = table.to_pandas()
    frame["item_id"] = frame["item_id"].astype(str)
    frame = frame.drop_duplicates("item_id", keep="last").set_index("item_id")
    for name in FIELDS:
        if name not in frame:
            frame[name] = None
    return CatalogSnapshot(frame[list(FIELDS)], stamp)


class CatalogHolder:
    """The current snapshot; ``refresh()`` re-reads it when the file changed (a stat, otherwise)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._snapshot = _empty()
        self._lock = threading.Lock()

    @property
    def snapshot(self) -> CatalogSnapshot:
        return self._snapshot

    def refresh(self) -> bool:
        """Whether a new catalog was read."""
        try:
            stamp: float | None = catalog_file(self.settings).stat().st_mtime
        except OSError:
            stamp = None
        if stamp == self._snapshot.stamp and (stamp is not None or not len(self._snapshot)):
            return False
        with self._lock:
            fresh = read_snapshot(self.settings)
            changed = fresh.stamp != self._snapshot.stamp
            self._snapshot = fresh
        if changed:
            log.info("catalog: %d items", len(fresh))
        return changed
