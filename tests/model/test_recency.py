"""A shop whose taste shifts: the recency-aware policy must follow it where all-time popularity cannot.

The shift is planted: from 60% of the way through the log, the 40 most popular items of the past trade
places with 40 middling ones (their events are relabelled), so yesterday's hits fade and new ones rise.
The policy is trained as the pipeline trains it (tuning on the validation period, stage-1 candidates,
the ranker on the label window), without Feast: item features come from the catalog.
"""

from __future__ import annotations

import pandas as pd
import pytest

from ingestion.synthetic.shop import ShopConfig, generate_shop
from models.baselines import PopularityRecommender
from models.context import from_lake
from models.evaluation import Split, paired_bootstrap_ci, per_user_results
from models.features import POLICY_SIGNALS, RANKER_SPEC, pair_frame
from models.splits import SplitSpec, fraction_cut, holdout, validation
from models.training.params import TrainParams
from models.training.policy import stage1_policy
from models.training.ranker_data import window_labels
from models.training.scoring import PolicyRecommender
from models.tuning import tune
from models.wide_deep.train import WideDeepConfig, WideDeepRanker
from tests.model.catalog import catalog_features

pytestmark = pytest.mark.slow


def shifted_shop() -> tuple[pd.DataFrame, pd.DataFrame]:
    shop = generate_shop(ShopConfig(users=2500, items=300, days=40, seed=17))
    events, catalog = shop.events.to_pandas(), shop.catalog.to_pandas()
    shift = fraction_cut(events, 0.4)
    early = events.loc[events["ts"] < shift, "item_id"].value_counts()
    hits, middling = early.index[:40].tolist(), early.index[100:140].tolist()
    swap = dict(zip(hits, middling, strict=True)) | dict(zip(middling, hits, strict=True))
    later = events["ts"] >= shift
    events.loc[later, "item_id"] = events.loc[later, "item_id"].map(lambda i: swap.get(i, i))
    return events, catalog


def test_the_recency_aware_policy_beats_all_time_popularity_after_a_shift() -> None:
    events, catalog = shifted_shop()
    spec = SplitSpec()
    split: Split = holdout(events, spec, min_users=20)
    params = TrainParams(models=("popularity", "two_tower", "wide_deep"), epochs=3, embedding_dim=16)
    tuned = tune(validation(split.train, spec), catalog, ("recent_popularity", "trending"), trials=6)
    assert tuned["cold_start"]["source"] != "popularity"  # validation saw the shift

    window_start = fraction_cut(split.train, spec.validation_fraction)
    before = split.train.loc[split.train["ts"] < window_start]
    window = split.train.loc[split.train["ts"] >= window_start]
    stage1 = stage1_policy(before, catalog, params, tuned)
    labels = window_labels(stage1, before, window, params)
    features = catalog_features(catalog)
    frame = pair_frame(labels, pd.DataFrame(index=pd.Index([], name="user_id")), features)
    for col in ("label", *POLICY_SIGNALS):
        frame[col] = labels[col].to_numpy()
    ranker = WideDeepRanker(RANKER_SPEC, WideDeepConfig(epochs=3, batch_size=256, seed=0)).fit(frame)

    policy = stage1_policy(split.train, catalog, params, tuned)
    policy.ranker, policy.item_features = ranker, features
    contexts = from_lake(split.train, as_of=split.cutoff)
    frames = per_user_results(
        {
            "policy": PolicyRecommender(policy, contexts, split.seen_items()),
            "popularity": PopularityRecommender().fit(split.train, catalog),
        },
        split,
        k_values=[10],
    )
    ours, theirs = frames["policy"]["ndcg@10"].to_numpy(), frames["popularity"]["ndcg@10"].to_numpy()
    lo, _ = paired_bootstrap_ci(ours, theirs)
    assert lo > 0, (ours.mean(), theirs.mean())
    cold = (frames["policy"]["segment"] == "without_history").to_numpy()
    assert ours[cold].mean() > theirs[cold].mean()  # the cold-start list followed the shift too
