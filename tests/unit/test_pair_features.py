"""The ranker's pair columns, computed in numpy since serving scores one shopper's ~150 candidates per
request, equal what pandas' string/number semantics give on mixed, missing and odd values."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.features import IF, UF, add_pair_features, pair_frame


def _pandas_reference(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    fav_cat = frame[f"{UF}fav_category_30d"].astype("string")
    fav_brand = frame[f"{UF}fav_brand_30d"].astype("string")
    same_cat = (fav_cat == frame[f"{IF}top_category"].astype("string")).fillna(False).astype(float)
    same_brand = (fav_brand == frame[f"{IF}brand"].astype("string")).fillna(False).astype(float)
    paid = pd.to_numeric(frame[f"{UF}avg_price_paid_30d"], errors="coerce")
    price = pd.to_numeric(frame[f"{IF}price"], errors="coerce")
    with np.errstate(invalid="ignore"):
        raw = np.log((price + 1.0) / (paid + 1.0))
    ratio = raw.replace([np.inf, -np.inf], np.nan).fillna(0.0)
    stock = frame[f"{IF}in_stock"].astype("boolean").fillna(True).astype(float)
    return {
        "same_category": same_cat.to_numpy(),
        "same_brand": same_brand.to_numpy(),
        "price_vs_paid": ratio.to_numpy(),
        "in_stock": stock.to_numpy(),
    }


def test_pair_columns_match_pandas_semantics() -> None:
    rng = np.random.default_rng(0)
    n = 400
    cats = np.array(["Garden", "Toys", None, np.nan, ""], dtype=object)
    frame = pd.DataFrame(
        {
            f"{UF}fav_category_30d": cats[rng.integers(0, 5, n)],
            f"{IF}top_category": cats[rng.integers(0, 5, n)],
            f"{UF}fav_brand_30d": np.array(["Acme", None, "Zed"], dtype=object)[rng.integers(0, 3, n)],
            f"{IF}brand": pd.array(
                np.array(["Acme", None, "Zed"], dtype=object)[rng.integers(0, 3, n)], dtype="string"
            ),
            f"{UF}avg_price_paid_30d": np.array([12.5, None, "7", "n/a", -3.0], dtype=object)[
                rng.integers(0, 5, n)
            ],
            f"{IF}price": np.where(rng.random(n) < 0.2, np.nan, rng.uniform(-2, 500, n)),
            f"{IF}in_stock": pd.array(
                np.array([True, False, None], dtype=object)[rng.integers(0, 3, n)], dtype="boolean"
            ),
        }
    )
    expected = _pandas_reference(frame)
    got = add_pair_features(frame.copy())
    for name, values in expected.items():
        np.testing.assert_array_equal(got[name].to_numpy(), values, err_msg=name)


def test_pair_frame_joins_known_and_unknown_ids() -> None:
    users = pd.DataFrame({f"{UF}fav_category_30d": ["Toys"]}, index=pd.Index(["u1"], name="user_id"))
    items = pd.DataFrame(
        {f"{IF}top_category": ["Toys", "Garden"], f"{IF}price": [5.0, 9.0]},
        index=pd.Index(["i1", "i2"], name="item_id"),
    )
    pairs = pd.DataFrame({"user_id": ["u1", "u1", "u9"], "item_id": ["i1", "i3", "i2"]})
    frame = pair_frame(pairs, users, items)
    assert frame["same_category"].tolist() == [1.0, 0.0, 0.0]
    assert np.isnan(frame[f"{IF}price"].iloc[1]) and frame[f"{IF}price"].iloc[2] == 9.0
    assert frame["in_stock"].tolist() == [1.0, 1.0, 1.0]  # unknown stock counts as in stock


def test_ranker_inputs_are_the_same_from_a_frame_or_from_columns() -> None:
    from models.features import RANKER_SPEC
    from models.wide_deep.model import encode_frame

    rng = np.random.default_rng(1)
    n = 50
    data: dict[str, np.ndarray] = {}
    for col in RANKER_SPEC.string_columns:
        data[col] = np.array(["a", None, np.nan, 3.0, "b"], dtype=object)[rng.integers(0, 5, n)]
    for col in RANKER_SPEC.numeric:
        data[col] = np.array([1.5, None, np.nan, 2, -7.25], dtype=object)[rng.integers(0, 5, n)]
    from_frame = encode_frame(RANKER_SPEC, pd.DataFrame(data))
    from_columns = encode_frame(RANKER_SPEC, data)
    assert from_frame.keys() == from_columns.keys()
    for col, values in from_frame.items():
        np.testing.assert_array_equal(values, from_columns[col], err_msg=col)
        assert values.dtype == from_columns[col].dtype
