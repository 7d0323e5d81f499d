"""The hybrid policy on a small generated shop: it beats popularity for users with history, never
recommends seen items or duplicates, answers unknown users, and its exported form gives the same lists.

Features here come from the catalog only (no Feast); the Feast-backed path runs in the train_models DAG
test, which builds real feature tables first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ingestion.synthetic.shop import ShopConfig, generate_shop
from models.baselines import CooccurrenceRecommender, PopularityRecommender, TrendingRecommender
from models.context import from_lake
from models.evaluation import Split, paired_bootstrap_ci, per_user_results, temporal_split
from models.features import POLICY_SIGNALS, RANKER_SPEC, USER_CATEGORICAL, USER_NUMERIC, pair_frame
from models.hybrid import (
    COLD_START,
    TOWER_FROM_FEAST,
    HybridPolicy,
    non_increasing,
    ranked_order,
)
from models.training.params import TrainParams
from models.training.policy import stage1_policy
from models.training.ranker_data import window_labels
from models.training.scoring import PolicyRecommender
from models.two_tower.export import export as export_tower
from models.two_tower.train import TwoTowerConfig, TwoTowerRecommender
from models.wide_deep.export import export as export_ranker
from models.wide_deep.train import WideDeepConfig, WideDeepRanker
from tests.model.catalog import catalog_features


@pytest.fixture(scope="module")
def shop() -> tuple[Split, pd.DataFrame]:
    generated = generate_shop(ShopConfig(users=1500, items=300, days=30, seed=11))
    return temporal_split(generated.events.to_pandas(), holdout_days=5), generated.catalog.to_pandas()


@pytest.fixture(scope="module")
def policy(shop: tuple[Split, pd.DataFrame]) -> HybridPolicy:
    split, catalog = shop
    train = split.train
    tower = TwoTowerRecommender(TwoTowerConfig(embedding_dim=32, epochs=4, seed=0)).fit(train, catalog)
    cooc = CooccurrenceRecommender().fit(train, catalog)
    trending = TrendingRecommender().fit(train, catalog)
    popularity = PopularityRecommender().fit(train, catalog)
    features = catalog_features(catalog)
    # the ranker's examples exactly as the pipeline makes them: stage-1 candidates, labelled by the window
    start = train["ts"].max() - pd.Timedelta(days=10)
    params = TrainParams(embedding_dim=32, epochs=4, negatives=4)
    stage1 = stage1_policy(train.loc[train["ts"] < start], catalog, params)
    labels = window_labels(stage1, train.loc[train["ts"] < start], train.loc[train["ts"] >= start], params)
    frame = pair_frame(labels, pd.DataFrame(index=pd.Index([], name="user_id")), features)
    for col in ("label", *POLICY_SIGNALS):
        frame[col] = labels[col].to_numpy()
    ranker = WideDeepRanker(RANKER_SPEC, WideDeepConfig(epochs=3, batch_size=256, seed=0)).fit(frame)
    return HybridPolicy(
        retriever=tower,
        ranker=ranker,
        item_ids=cooc.item_ids_,
        cooccurrence=cooc.cooccurrence_,
        trending=trending.trending_,
        popularity=popularity.popularity_,
        item_features=features,
    )


USER_COLUMNS = (*USER_NUMERIC, *USER_CATEGORICAL)


def _recommender(policy: HybridPolicy, split: Split) -> PolicyRecommender:
    return PolicyRecommender(policy, from_lake(split.train), split.seen_items())


def test_hybrid_beats_popularity_for_users_with_history(
    policy: HybridPolicy, shop: tuple[Split, pd.DataFrame]
) -> None:
    split, catalog = shop
    frames = per_user_results(
        {
            "hybrid": _recommender(policy, split),
            "popularity": PopularityRecommender().fit(split.train, catalog),
        },
        split,
        k_values=[10],
    )
    hist = {name: f.loc[f["segment"] == "with_history", "ndcg@10"].to_numpy() for name, f in frames.items()}
    lo, _ = paired_bootstrap_ci(hist["hybrid"], hist["popularity"])
    assert lo > 0, (hist["hybrid"].mean(), hist["popularity"].mean())
    every = {name: f["ndcg@10"].to_numpy() for name, f in frames.items()}
    _, hi = paired_bootstrap_ci(every["hybrid"], every["popularity"])
    assert hi > 0  # never worse than popularity overall beyond the interval


def test_lists_are_clean_and_unknown_users_get_trending(
    policy: HybridPolicy, shop: tuple[Split, pd.DataFrame]
) -> None:
    split, _ = shop
    rec = _recommender(policy, split)
    users = [str(u) for u in split.with_history[:30]] + ["never-seen"]
    lists = rec.recommend(users, k=10)
    seen = split.seen_items()
    for user in users:
        assert len(lists[user]) == 10 and len(set(lists[user])) == 10
        assert not set(lists[user]) & seen.get(user, set())
    assert rec.sources["never-seen"] == COLD_START
    trending_top = [str(i) for i in policy.item_ids[ranked_order(policy.item_ids, policy.trending)][:10]]
    assert lists["never-seen"] == trending_top  # the cold-start source's order, scores or not
    assert all(rec.sources[u] == "hybrid" for u in users[:-1])


def test_known_and_new_shoppers_scores_mean_the_same(
    policy: HybridPolicy, shop: tuple[Split, pd.DataFrame]
) -> None:
    """Scores are the ranker's 0..1 engagement estimates for every list, cold-start ones included
    (calibrated along the trending order), never raw trending mass on another scale."""
    split, _ = shop
    users = [str(u) for u in split.with_history[:30]] + ["never-seen", "also-new"]
    queries = from_lake(split.train).queries(users).frame
    recs = policy.recommend(queries, 10, [split.seen_items().get(u, set()) for u in users])
    for rec in recs:
        assert all(0.0 <= s <= 1.0 for s in rec.scores), (rec.source, rec.scores)
        assert rec.scores == sorted(rec.scores, reverse=True)
    warm = np.concatenate([r.scores for r in recs if r.source == "hybrid"])
    cold = recs[-1]
    assert cold.source == COLD_START and recs[-2].scores == cold.scores
    # what the ranker itself says about a shopper it knows nothing of, for these items
    query = from_lake(split.train).queries(["anyone-new"]).frame
    pairs = pd.DataFrame({"row": 0, "user_id": "anyone-new", "item_id": cold.items})
    embeddings = policy.retriever.embed_users(query.assign(**{c: 0.0 for c in TOWER_FROM_FEAST}))
    pairs = policy.pair_scores(pairs, np.asarray(embeddings), np.zeros((1, len(policy.item_ids))))
    raw = np.asarray(
        policy.ranker.score(policy.features(query.assign(**{c: None for c in USER_COLUMNS}), pairs))
    )
    assert abs(np.mean(cold.scores) - raw.mean()) < 0.1 * max(warm.max(), 1e-6) + 0.05
    assert np.median(cold.scores) < 10 * np.median(warm) and np.median(warm) < 10 * np.median(cold.scores)


def test_non_increasing_is_the_closest_monotone_sequence() -> None:
    values = np.array([0.5, 0.7, 0.2, 0.3, 0.3, 0.1])
    fitted = non_increasing(values)
    assert np.all(np.diff(fitted) <= 0)
    assert fitted.sum() == pytest.approx(values.sum())  # pooling keeps the mass
    np.testing.assert_allclose(fitted, [0.6, 0.6, 0.2666667, 0.2666667, 0.2666667, 0.1], rtol=1e-6)
    ordered = np.array([0.9, 0.4, 0.4, 0.0])
    np.testing.assert_array_equal(non_increasing(ordered), ordered)


def test_exported_policy_gives_the_same_lists_and_scores(
    policy: HybridPolicy, shop: tuple[Split, pd.DataFrame], tmp_path: Path
) -> None:
    split, _ = shop
    export_tower(policy.retriever, tmp_path / "two_tower")  # type: ignore[arg-type]
    export_ranker(policy.ranker, tmp_path / "wide_deep")  # type: ignore[arg-type]
    policy.export(tmp_path)
    loaded = HybridPolicy.load(tmp_path)
    users = [str(u) for u in split.with_history[:25]] + ["never-seen"]
    queries = from_lake(split.train).queries(users).frame
    seen = [split.seen_items().get(u, set()) for u in users]
    before = policy.recommend(queries, 10, seen)
    after = loaded.recommend(queries, 10, seen)
    for a, b in zip(before, after, strict=True):
        assert a.items == b.items and a.source == b.source
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5, atol=1e-5)


def test_score_items_gives_the_scores_a_recommendation_has(
    policy: HybridPolicy, shop: tuple[Split, pd.DataFrame]
) -> None:
    """Search re-ranks its hits by ``score_items``: it must be the same taste the lists are ranked by."""
    split, _ = shop
    contexts = from_lake(split.train)
    users = [str(u) for u in split.with_history[:5]]
    queries = contexts.queries(users)
    lists = policy.recommend(queries.frame, 10, queries.excluded)
    for row, user in enumerate(users):
        one = contexts.queries([user]).frame
        scores = policy.score_items(one, [*lists[row].items, "no-such-item"])
        assert np.allclose(scores[:-1], lists[row].scores, rtol=1e-5, atol=1e-6), user
        assert np.isnan(scores[-1])


def test_numpy_copies_score_as_the_tensorflow_signatures(
    policy: HybridPolicy, shop: tuple[Split, pd.DataFrame], tmp_path: Path
) -> None:
    """Serving scores the exported user tower and ranker in numpy (copies read from the SavedModels at
    load): on real shoppers and their real candidates they give the signatures' numbers, and lists."""
    from models.two_tower.numpy_tower import NumpyTower, numpy_tower
    from models.wide_deep.numpy_scorer import NumpyRanker, numpy_ranker

    split, _ = shop
    export_tower(policy.retriever, tmp_path / "two_tower")  # type: ignore[arg-type]
    export_ranker(policy.ranker, tmp_path / "wide_deep")  # type: ignore[arg-type]
    policy.export(tmp_path)
    loaded = HybridPolicy.load(tmp_path)
    tower, ranker = numpy_tower(loaded.retriever), numpy_ranker(loaded.ranker)
    assert isinstance(tower, NumpyTower) and isinstance(ranker, NumpyRanker)  # their own checks passed
    users = [str(u) for u in split.with_history[:200]] + ["never-seen"]
    queries = from_lake(split.train).queries(users)
    frame = loaded.candidates(queries.frame, queries.excluded)[0]  # the real candidates of those shoppers
    completed = loaded._complete(queries.frame)
    np.testing.assert_allclose(
        tower.embed_users(completed), loaded.retriever.embed_users(completed), rtol=0, atol=1e-5
    )
    columns = loaded._feature_columns(completed, frame)
    assert len(frame) > 10_000
    np.testing.assert_allclose(ranker.score(columns), loaded.ranker.score(columns), rtol=0, atol=1e-5)
    fast = loaded.with_parts(tower, ranker)
    # with numpy parts the policy answers through its compiled one-shopper path (models.hybrid_numpy);
    # the signatures' policy through frames: both must give the same lists
    assert fast.numpy_path() is not None and loaded.numpy_path() is None
    for frame in (queries.frame, _with_user_features(queries.frame, loaded.item_features)):
        before = loaded.recommend(frame, 10, queries.excluded)
        after = fast.recommend(frame, 10, queries.excluded)
        assert sum(rec.source == "hybrid" for rec in after) >= 150
        for a, b in zip(before, after, strict=True):
            assert a.items == b.items and a.source == b.source
            np.testing.assert_allclose(a.scores, b.scores, rtol=0, atol=1e-5)
    np.testing.assert_allclose(fast.cold_start_scores(), loaded.cold_start_scores(), rtol=0, atol=1e-5)
    # serving compiles at load (and again for fresher item features), never in a shopper's request
    from serving.policies import serve_hybrid, with_features

    served = serve_hybrid("champion", "1", loaded)
    assert served.policy.__dict__["_numpy"].built_for(served.policy)
    cheaper = loaded.item_features.assign(item_features__price=1.0)
    refreshed = with_features(served, cheaper)
    compiled = refreshed.policy.__dict__["_numpy"]
    assert compiled.built_for(refreshed.policy) and not compiled.built_for(served.policy)
    assert np.allclose(compiled.price, 1.0)


def _with_user_features(frame: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """The lake's queries carry no Feast features here: give every shopper some (favourites drawn from
    the catalog's values, also ones the ranker never saw; counts, prices, missing values) so the shopper's
    share of the ranker and the wide part's crosses are exercised."""
    rng = np.random.default_rng(5)
    out = frame.copy()
    n = len(out)
    categories = [*items["item_features__top_category"].dropna().unique().tolist(), "never-seen", None]
    brands = [*items["item_features__brand"].dropna().unique().tolist()[:20], "no-such-brand", None]
    out["user_features__fav_category_30d"] = [categories[i] for i in rng.integers(0, len(categories), n)]
    out["user_features__fav_brand_30d"] = [brands[i] for i in rng.integers(0, len(brands), n)]
    for column in USER_NUMERIC:
        values = rng.poisson(3.0, n).astype(np.float64)
        values[rng.random(n) < 0.2] = np.nan
        out[column] = values
    out["user_features__avg_price_paid_30d"] = rng.lognormal(3.0, 1.0, n)
    return out


def test_compiled_path_with_a_sequence_model_gives_the_frame_paths_lists(
    policy: HybridPolicy, shop: tuple[Split, pd.DataFrame], tmp_path: Path
) -> None:
    """A policy with a SASRec model: serving's numpy copies (tower, ranker and the sequence encoder) and
    the compiled one-shopper path give the signatures' lists, sequence candidates and scores included."""
    from models.sasrec.export import export as export_sasrec
    from models.sasrec.model import SASRecConfig
    from models.sasrec.numpy_encoder import NumpySASRec
    from models.sasrec.train import SASRecRecommender
    from serving.policies import numpy_models

    split, _ = shop
    sasrec = SASRecRecommender(SASRecConfig(max_len=20, dim=32, blocks=2, epochs=1, seed=0)).fit(split.train)
    sequenced = policy.with_parts(sequence=sasrec)
    export_tower(policy.retriever, tmp_path / "two_tower")  # type: ignore[arg-type]
    export_ranker(policy.ranker, tmp_path / "wide_deep")  # type: ignore[arg-type]
    export_sasrec(sasrec, tmp_path / "sasrec")
    sequenced.export(tmp_path)
    loaded = HybridPolicy.load(tmp_path)
    fast = numpy_models(loaded)
    assert isinstance(fast.sequence, NumpySASRec) and fast.numpy_path() is not None
    users = [str(u) for u in split.with_history[:150]] + ["never-seen"]
    queries = from_lake(split.train).queries(users)
    recent = [list(r) for r in queries.frame["recent_items"]]
    np.testing.assert_allclose(
        fast.sequence.states(recent), loaded.sequence.states(recent), rtol=0, atol=1e-5
    )
    frame = _with_user_features(queries.frame, loaded.item_features)
    before = loaded.recommend(frame, 10, queries.excluded)
    after = fast.recommend(frame, 10, queries.excluded)
    for a, b in zip(before, after, strict=True):
        assert a.items == b.items and a.source == b.source
        np.testing.assert_allclose(a.scores, b.scores, rtol=0, atol=1e-5)
