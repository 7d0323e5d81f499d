"""Matrix factorisation with Spark MLlib's ALS: the collaborative-filtering baseline.

Why ALS next to the neighbourhood baselines: it is the standard "latent factors from implicit feedback"
model (Hu, Koren & Volinsky, 2008) and it trains where the data already lives (Spark), so it is the bar
a learned model has to clear before its extra cost is worth it. Training runs in Spark, but the factors
are collected to numpy and scoring is a plain matrix product, so serving never needs a Spark session.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Final, cast

import numpy as np
import pandas as pd

from models.baselines._base import ScoringRecommender

if TYPE_CHECKING:
    from pyspark.sql import DataFrame as SparkDataFrame
    from pyspark.sql import SparkSession

    from aisle.core.settings import Settings

#: ALS user/item blocks. Fixed, not the machine's core count, because Spark seeds the initial factors
#: per block: the same seed must give the same model on a laptop and on a cluster.
ALS_BLOCKS: Final = 8
#: Fewer rated pairs than this (in train, or scored in test) and an RMSE says nothing.
MIN_RATINGS: Final = 2


def _spark(settings: Settings | None) -> SparkSession:
    """The shared session; imported lazily so that scoring a fitted model never loads pyspark."""
    from aisle.core.settings import get_settings
    from feature_repo.compute.session import spark_session

    return spark_session(settings if settings is not None else get_settings())


def _factors(frame: SparkDataFrame, n: int, rank: int) -> np.ndarray:
    """Collect an ALS factor table into an (n, rank) array indexed by id; ids ALS never saw stay zero."""
    pdf = cast(pd.DataFrame, frame.toPandas())
    out = np.zeros((n, rank), dtype=np.float64)
    if len(pdf):
        out[pdf["id"].to_numpy(dtype=np.int64)] = np.vstack(pdf["features"].to_numpy()).astype(np.float64)
    return out


class ALSRecommender(ScoringRecommender):
    """Implicit-feedback ALS on the user × item matrix of summed event weights.

    The rating ALS sees is ``log1p(weight)``: Spark turns it into confidence ``1 + alpha * rating``,
    and the log keeps a user's hundred views of one item from outweighing everything else they did
    (the same damping item-kNN uses). Score = user factors · item factors, with popularity scaled
    down to a tie-breaker; users without history get the popularity ranking.
    """

    user_factors_: np.ndarray
    item_factors_: np.ndarray
    #: Time in ``_fit`` (shipping pairs to Spark, training, collecting factors), not the id maps.
    fit_seconds_: float
    iterations_: int

    def __init__(
        self,
        settings: Settings | None = None,
        rank: int = 32,
        max_iter: int = 10,
        reg_param: float = 0.05,
        alpha: float = 10.0,
        seed: int = 0,
    ):
        if rank < 1 or max_iter < 1:
            raise ValueError(f"rank and max_iter must be at least 1 (got {rank}, {max_iter})")
        if reg_param < 0 or alpha < 0:
            raise ValueError(f"reg_param and alpha must not be negative (got {reg_param}, {alpha})")
        self.settings = settings
        self.rank = rank
        self.max_iter = max_iter
        self.reg_param = reg_param
        self.alpha = alpha
        self.seed = seed

    def _fit(self, train: pd.DataFrame, rows: np.ndarray, cols: np.ndarray, weights: np.ndarray) -> None:
        started = time.perf_counter()
        coo = self.interactions_.tocoo()
        keep = coo.data > 0  # zero-weight events (ratings, cart removals) are not preferences
        pairs = pd.DataFrame(
            {
                "user": coo.row[keep].astype(np.int32),
                "item": coo.col[keep].astype(np.int32),
                "rating": np.log1p(coo.data[keep]).astype(np.float32),
            }
        )
        n_users, n_items = self.interactions_.shape
        self.user_factors_ = np.zeros((n_users, self.rank))
        self.item_factors_ = np.zeros((n_items, self.rank))
        self.iterations_ = 0
        if len(pairs):
            spark = _spark(self.settings)
            als = _spark_als(
                self.rank, self.max_iter, self.reg_param, self.seed, implicit=True, alpha=self.alpha
            )
            model = als.fit(spark.createDataFrame(pairs))
            self.user_factors_ = _factors(model.userFactors, n_users, self.rank)
            self.item_factors_ = _factors(model.itemFactors, n_items, self.rank)
            self.iterations_ = self.max_iter  # Spark's ALS has no early stop: it always runs maxIter
        self.fit_seconds_ = time.perf_counter() - started

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        return self._over_popularity(user_rows, lambda rows: self.user_factors_[rows] @ self.item_factors_.T)


def _spark_als(
    rank: int, max_iter: int, reg_param: float, seed: int, implicit: bool, alpha: float = 1.0
) -> Any:
    """Spark's ALS as both uses configure it: fixed block count (same seed, same model on any machine),
    no checkpointing, unknown ids dropped at prediction time."""
    from pyspark.ml.recommendation import ALS

    return ALS(
        rank=rank,
        maxIter=max_iter,
        regParam=reg_param,
        alpha=alpha,
        implicitPrefs=implicit,
        nonnegative=False,
        seed=seed,
        numUserBlocks=ALS_BLOCKS,
        numItemBlocks=ALS_BLOCKS,
        checkpointInterval=-1,
        coldStartStrategy="drop",
    )


def _rating_pairs(events: pd.DataFrame) -> pd.DataFrame:
    """Mean rating per (user, item): a re-rating replaces, not doubles, the evidence."""
    ratings = events.loc[events["event_type"] == "rating", ["user_id", "item_id", "value"]].dropna()
    ratings = ratings.astype({"user_id": str, "item_id": str, "value": np.float64})
    return ratings.groupby(["user_id", "item_id"], as_index=False, sort=True)["value"].mean()


def _rmse(errors: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(errors))))


def rating_rmse(
    train: pd.DataFrame,
    test: pd.DataFrame,
    settings: Settings | None = None,
    rank: int = 16,
    max_iter: int = 10,
    reg_param: float = 0.3,
    seed: int = 0,
) -> dict[str, Any]:
    """Explicit ALS on the star ratings of ``train``, scored on the ``test`` ratings it can predict.

    Only test pairs whose user and item both rated/were rated in training are scored (ALS has no
    factors for the others); the RMSE of always predicting the training mean on the same pairs is the
    bar. ALS fits the ratings minus that mean, so a user or item with little evidence shrinks towards
    the mean rather than towards zero stars. ``reg_param`` defaults to 0.3, not Spark's 0.1: at 0.1
    ALS lost to the mean on half the generated shops tried (a few ratings per user overfit). Ratings
    are sparse (a share of purchases), so on small data there may be nothing to score: the RMSEs are
    then ``None``, never an exception.
    """
    rated_train, rated_test = _rating_pairs(train), _rating_pairs(test)
    result: dict[str, Any] = {
        "rmse": None,
        "ratings_train": len(rated_train),
        "ratings_test": len(rated_test),
        "rated_test_pairs_scored": 0,
        "global_mean_rmse": None,
    }
    if len(rated_train) < MIN_RATINGS:
        return result
    users = pd.Index(rated_train["user_id"].unique())
    items = pd.Index(rated_train["item_id"].unique())
    u_test, i_test = users.get_indexer(rated_test["user_id"]), items.get_indexer(rated_test["item_id"])
    known = (u_test >= 0) & (i_test >= 0)
    if known.sum() < MIN_RATINGS:
        return result

    mean = float(rated_train["value"].mean())
    spark = _spark(settings)
    fit_frame = pd.DataFrame(
        {
            "user": users.get_indexer(rated_train["user_id"]).astype(np.int32),
            "item": items.get_indexer(rated_train["item_id"]).astype(np.int32),
            "rating": (rated_train["value"].to_numpy() - mean).astype(np.float32),
        }
    )
    als = _spark_als(rank, max_iter, reg_param, seed, implicit=False)
    model = als.fit(spark.createDataFrame(fit_frame))
    score_frame = pd.DataFrame(
        {
            "user": u_test[known].astype(np.int32),
            "item": i_test[known].astype(np.int32),
            "truth": rated_test["value"].to_numpy()[known],
        }
    )
    scored = cast(pd.DataFrame, model.transform(spark.createDataFrame(score_frame)).toPandas())
    if len(scored) < MIN_RATINGS:
        return result
    truth = scored["truth"].to_numpy(dtype=np.float64)
    predicted = np.clip(scored["prediction"].to_numpy(dtype=np.float64) + mean, 1.0, 5.0)
    result["rated_test_pairs_scored"] = len(scored)
    result["rmse"] = _rmse(predicted - truth)
    result["global_mean_rmse"] = _rmse(mean - truth)
    return result
