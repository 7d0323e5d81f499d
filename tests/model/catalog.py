"""Item features a test builds from a generated catalog, where the pipeline would read Feast."""

from __future__ import annotations

import pandas as pd


def catalog_features(catalog: pd.DataFrame) -> pd.DataFrame:
    """The ranker's item feature columns (full Feast names) that a catalog alone can fill."""
    return pd.DataFrame(
        {
            "item_features__top_category": catalog["category"].str.split(">").str[0].to_numpy(),
            "item_features__brand": catalog["brand"].to_numpy(),
            "item_features__price": catalog["price"].to_numpy(),
            "item_features__in_stock": catalog["in_stock"].to_numpy(),
        },
        index=pd.Index(catalog["item_id"].astype(str), name="item_id"),
    )
