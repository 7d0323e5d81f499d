"""ALS on Spark: protocol hygiene on tiny data, the planted signal on a generated shop, rating RMSE.

One Spark session serves the module (starting the JVM is most of the cost); every fit is seeded, so
the figures below are the same on every run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aisle.core.settings import Settings, load_settings
from ingestion.synthetic.shop import ShopConfig, generate_shop
from models.baselines import ALSRecommender, PopularityRecommender
from models.baselines.als import rating_rmse
from models.evaluation import Recommender, paired_bootstrap_ci, per_user_results, temporal_split
from tests.model.lists import assert_clean_lists

pytest.importorskip("pyspark")

pytestmark = pytest.mark.integration  # needs a local Spark JVM (Java 17+)

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def _events(rows: list[tuple[str, str, str, float]], value: float | None = None) -> pd.DataFrame:
    """(user, item, event_type, day offset) → an event frame."""
    return pd.DataFrame(
        {
            "user_id": [r[0] for r in rows],
            "item_id": [r[1] for r in rows],
            "event_type": [r[2] for r in rows],
            "ts": [T0 + pd.Timedelta(days=r[3]) for r in rows],
            "session_id": [f"s-{r[0]}-{r[3]}" for r in rows],
            "value": value,
        }
    )


TINY = _events(
    [
        ("u1", "phone", "purchase", 0),
        ("u1", "case", "purchase", 0),
        ("u2", "phone", "view", 1),
        ("u2", "case", "add_to_cart", 1),
        ("u3", "phone", "purchase", 2),
        ("u4", "lamp", "view", 9),
        ("u4", "lamp", "view", 9),
        ("u5", "mug", "view", 0),
        ("u5", "mug", "view", 0),
        ("u5", "mug", "view", 0),
        ("u5", "mug", "rating", 3),  # weight 0: not a preference, but still a seen item
    ]
)
CATALOG = pd.DataFrame({"item_id": ["phone", "case", "lamp", "mug", "sofa"]})


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    from feature_repo.compute.session import spark_session

    config = load_settings(home=Path(tmp_path_factory.mktemp("als-home")), spark_master="local[2]")
    session = spark_session(config)
    yield config
    session.stop()


def test_tiny_frame_protocol_hygiene(settings: Settings) -> None:
    model = ALSRecommender(settings, rank=4, max_iter=5, seed=7)
    assert isinstance(model, Recommender)
    model.fit(TINY, CATALOG)
    assert model.user_factors_.shape == (5, 4) and model.item_factors_.shape == (5, 4)
    sofa = int(np.flatnonzero(model.item_ids_ == "sofa")[0])
    assert not model.item_factors_[sofa].any()  # never interacted with: a zero vector
    assert model.iterations_ == 5 and model.fit_seconds_ > 0

    users = ["u1", "u2", "u3", "u4", "u5", "new"]
    recs = model.recommend(users, k=10)
    seen = TINY.groupby("user_id")["item_id"].agg(set).to_dict()
    assert_clean_lists(recs, users, seen, n_items=5)
    pop = PopularityRecommender().fit(TINY, CATALOG)
    assert recs["new"] == pop.recommend(["new"], k=10)["new"] == ["phone", "case", "mug", "lamp", "sofa"]
    assert sorted(model.recommend(["u1"], k=10, exclude_seen=False)["u1"]) == sorted(CATALOG["item_id"])
    assert model.recommend(users, k=0) == {u: [] for u in users}

    again = ALSRecommender(settings, rank=4, max_iter=5, seed=7).fit(TINY, CATALOG)
    assert np.array_equal(again.user_factors_, model.user_factors_)
    assert again.recommend(users, k=10) == recs


def test_rejects_nonsense_hyperparameters() -> None:
    with pytest.raises(ValueError):
        ALSRecommender(rank=0)
    with pytest.raises(ValueError):
        ALSRecommender(alpha=-1.0)


@pytest.mark.slow
def test_beats_popularity_for_users_with_history(settings: Settings) -> None:
    # The same shop as the other baselines' test: at 1,500 users there are ~250 users with history,
    # too few for even item-kNN to separate from popularity with confidence.
    shop = generate_shop(ShopConfig(users=3000, items=400, days=60, seed=3))
    catalog = shop.catalog.to_pandas()
    split = temporal_split(shop.events.to_pandas(), holdout_days=7)
    assert len(split.with_history) > 300
    models: dict[str, Recommender] = {
        "popularity": PopularityRecommender().fit(split.train, catalog),
        "als": ALSRecommender(settings).fit(split.train, catalog),  # the defaults, untuned for this shop
    }
    per_user = per_user_results(models, split, (10,), catalog)
    pop, als = per_user["popularity"], per_user["als"]
    history = (pop["segment"] == "with_history").to_numpy()
    lo, _ = paired_bootstrap_ci(als["ndcg@10"][history], pop["ndcg@10"][history], n=1000, seed=0)
    assert lo > 0.01, f"ALS does not clearly beat popularity for users with history (CI low {lo:.4f})"
    assert np.allclose(als["ndcg@10"][~history], pop["ndcg@10"][~history])  # newcomers: popularity


@pytest.mark.slow
def test_rating_rmse_beats_the_global_mean(settings: Settings) -> None:
    # Ratings are a share of purchases, so the default shop has a few dozen; this one is dense enough
    # that the same users and items recur between train and test.
    config = ShopConfig(
        users=800,
        items=60,
        days=90,
        seed=3,
        sessions_per_user_day=0.3,
        cart_rate=0.2,
        purchase_rate=0.9,
        rating_rate=1.0,
    )
    split = temporal_split(generate_shop(config).events.to_pandas(), holdout_days=14)
    result = rating_rmse(split.train, split.test, settings)
    assert result["ratings_train"] > 1000 and result["rated_test_pairs_scored"] > 300
    assert np.isfinite(result["rmse"]) and np.isfinite(result["global_mean_rmse"])
    assert result["rmse"] < 0.98 * result["global_mean_rmse"], result


def test_rating_rmse_without_ratings_is_none(settings: Settings) -> None:
    no_ratings = TINY.loc[TINY["event_type"] != "rating"]
    assert rating_rmse(no_ratings, no_ratings, settings) == {
        "rmse": None,
        "ratings_train": 0,
        "ratings_test": 0,
        "rated_test_pairs_scored": 0,
        "global_mean_rmse": None,
    }
    rated = _events([("u1", "phone", "rating", 0), ("u2", "case", "rating", 1)], value=4.0)
    unseen = _events([("u9", "lamp", "rating", 5)], value=2.0)
    result = rating_rmse(rated, unseen, settings)  # nothing in test that training can score
    assert result["rmse"] is None and result["ratings_train"] == 2 and result["ratings_test"] == 1
