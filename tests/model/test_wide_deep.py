"""Wide & Deep ranker: it finds a planted cross signal, exports faithfully, refuses bad input, repeats
itself for a seed. The data are generated (numpy, seeded) and small: the whole file runs on 2 cores.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.wide_deep import RankerSpec, WideDeepArtifact, WideDeepConfig, WideDeepRanker, export
from models.wide_deep.train import roc_auc

FAV = "user_features__fav_category_30d"
CATEGORY = "item_features__top_category"
PRICE = "item_features__price"
VIEWS = "user_features__views_30d"
SPEC = RankerSpec(
    ids=("user_id", "item_id"),
    categorical=(FAV, CATEGORY),
    numeric=(PRICE, VIEWS),
    crosses=((FAV, CATEGORY),),
)
CONFIG = WideDeepConfig(embedding_dim=8, hidden=(32, 16), epochs=3, learning_rate=3e-3, batch_size=64, seed=7)
CATEGORIES = 8
ITEMS = 400


def _catalog(rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": [f"i{i}" for i in range(ITEMS)],
            CATEGORY: [f"c{c}" for c in rng.integers(0, CATEGORIES, ITEMS)],
            PRICE: np.round(rng.lognormal(3.0, 0.8, ITEMS), 2),
        }
    )


def _users(rng: np.random.Generator, n: int, prefix: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": [f"{prefix}{u}" for u in range(n)],
            FAV: [f"c{c}" for c in rng.integers(0, CATEGORIES, n)],
            VIEWS: rng.poisson(20, n).astype(float),
        }
    )


def _interactions(
    rng: np.random.Generator, users: pd.DataFrame, catalog: pd.DataFrame, matching: int = 8, random: int = 16
) -> pd.DataFrame:
    """Per user: items of the favourite category (relevant with high probability, more so when cheap,
    graded 1–3) and random items (almost always 0). The signal is the cross fav × category + price."""
    by_category = {c: g.index.to_numpy() for c, g in catalog.groupby(CATEGORY)}
    rows = []
    for user in users.itertuples(index=False):
        fav = getattr(user, FAV)
        picked = np.concatenate(
            [rng.choice(by_category[fav], matching), rng.integers(0, len(catalog), random)]
        )
        rows.append(
            pd.DataFrame({"user_id": user.user_id, FAV: fav, VIEWS: getattr(user, VIEWS), "i": picked})
        )
    frame = pd.concat(rows, ignore_index=True)
    frame = frame.join(catalog, on="i").drop(columns="i")
    match = (frame[FAV] == frame[CATEGORY]).to_numpy()
    cheap = -np.log(frame[PRICE].to_numpy() / 20.0)
    p_relevant = np.where(match, 1.0 / (1.0 + np.exp(-(1.0 + 1.5 * cheap))), 0.03)
    relevant = rng.random(len(frame)) < p_relevant
    frame["label"] = np.where(relevant, rng.choice([1, 2, 3], len(frame), p=[0.5, 0.3, 0.2]), 0)
    frame.loc[rng.random(len(frame)) < 0.05, PRICE] = np.nan  # unknown prices must not break anything
    return frame


@pytest.fixture(scope="module")
def shop() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(11)
    catalog = _catalog(rng)
    train_users = _users(rng, 400, "u")
    test_users = _users(rng, 100, "new")
    return {
        "catalog": catalog,
        "train": _interactions(rng, train_users, catalog),
        "valid": _interactions(rng, test_users, catalog),
        "test_users": test_users,
    }


@pytest.fixture(scope="module")
def ranker(shop: dict[str, pd.DataFrame]) -> WideDeepRanker:
    return WideDeepRanker(SPEC, CONFIG).fit(shop["train"], validation=shop["valid"])


def test_ranks_planted_relevant_item_first(ranker: WideDeepRanker, shop: dict[str, pd.DataFrame]) -> None:
    rng = np.random.default_rng(5)
    catalog = shop["catalog"]
    candidates = []
    for user in shop["test_users"].itertuples(index=False):
        fav = getattr(user, FAV)
        planted = catalog[catalog[CATEGORY] == fav].sample(1, random_state=rng)
        others = catalog[catalog[CATEGORY] != fav].sample(20, random_state=rng)
        block = pd.concat([planted, others], ignore_index=True)
        block["user_id"], block[FAV], block[VIEWS] = user.user_id, fav, getattr(user, VIEWS)
        candidates.append(block)
    frame = pd.concat(candidates, ignore_index=True)
    scores = ranker.score(frame).reshape(-1, 21)
    top1 = float(np.mean(scores.argmax(axis=1) == 0))
    assert top1 >= 0.8, f"planted item first for {top1:.0%} of held-out users (chance {1 / 21:.0%})"

    valid = shop["valid"]
    auc = roc_auc(valid["label"].to_numpy() > 0, ranker.score(valid))
    assert auc > 0.8, auc
    assert ranker.history_["loss"][-1] < ranker.history_["loss"][0]
    assert len(ranker.history_["val_auc"]) == ranker.epochs_run_ == CONFIG.epochs
    assert ranker.examples_ == len(shop["train"]) and ranker.fit_seconds_ > 0


def test_export_round_trip(ranker: WideDeepRanker, shop: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    frame = shop["valid"].head(200).copy()
    frame.loc[:9, "item_id"] = "never-seen-item"
    frame.loc[5:14, CATEGORY] = "never-seen-category"
    frame.loc[10:19, FAV] = None
    frame.loc[15:24, [PRICE, VIEWS]] = np.nan
    paths = export(ranker, tmp_path / "wd")
    assert {"saved_model", "spec", "config"} <= set(paths)

    artifact = WideDeepArtifact.load(tmp_path / "wd")
    assert artifact.spec == SPEC
    expected = ranker.score(frame)
    got = artifact.score(frame)
    assert got.dtype == np.float32 and got.shape == (len(frame),)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    assert np.isfinite(got).all()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns=[PRICE]), PRICE),
        (lambda f: f.drop(columns=["label"]), "label"),
        (lambda f: f.iloc[:0], "empty"),
        (lambda f: f.assign(label=2), "constant"),
        (lambda f: f.assign(label=-1.0), "negative"),
    ],
)
def test_refuses_bad_input(
    shop: dict[str, pd.DataFrame], change: Callable[[pd.DataFrame], pd.DataFrame], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        WideDeepRanker(SPEC, CONFIG).fit(change(shop["train"].head(50)))


def test_spec_refuses_crosses_of_unknown_columns() -> None:
    with pytest.raises(ValueError, match="cross"):
        RankerSpec(categorical=("a",), crosses=(("a", "b"),))
    assert RankerSpec.from_json(SPEC.to_json()) == SPEC


def test_same_seed_same_scores(shop: dict[str, pd.DataFrame]) -> None:
    train = shop["train"].head(2000)
    config = WideDeepConfig(embedding_dim=4, hidden=(8,), epochs=2, batch_size=128, seed=3)
    first = WideDeepRanker(SPEC, config).fit(train).score(shop["valid"])
    second = WideDeepRanker(SPEC, config).fit(train).score(shop["valid"])
    np.testing.assert_array_equal(first, second)
