"""A run's models on its holdout: the split read back from disk, and each model as a ``Recommender``.

Every model is scored the same way (``models.evaluation``); what differs is only how a saved artifact
answers ``recommend``: baselines as they are, the two-tower through its exported user tower with the
shoppers' queries fixed at the cutoff, the policy with each shopper's context as of the cutoff (the
contract's lake adapter).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
import pandas as pd

from models.context import Contexts
from models.evaluation import Split, per_user_results, split_at, subsample_users
from models.hybrid import HybridPolicy
from models.training.layout import RunLayout
from models.training.params import TrainParams
from models.training.table import load


def read_catalog(layout: RunLayout) -> pd.DataFrame | None:
    return pd.read_parquet(layout.catalog) if layout.catalog.exists() else None


def read_split(layout: RunLayout, params: TrainParams, cutoff: str) -> Split:
    """The run's split, re-derived from its saved halves at its cut, scored on at most ``max_eval_users``."""
    train = pd.read_parquet(layout.train_events)
    test = pd.read_parquet(layout.test_events)
    split = split_at(pd.concat([train, test], ignore_index=True), pd.Timestamp(cutoff))
    return subsample_users(split, params.max_eval_users, params.seed)


def read_user_features(layout: RunLayout) -> pd.DataFrame:
    """The Feast user features as of the cutoff, snapshotted by ``prepare``."""
    return pd.read_parquet(layout.user_features).set_index("user_id")


class TowerRecommender:
    """An exported two-tower artifact behind the ``Recommender`` protocol, queries fixed at the cutoff."""

    def __init__(self, artifact: Any, split: Split, seen: Mapping[str, set[str]]):
        from models.two_tower.data import user_queries

        self.artifact = artifact
        self.queries = user_queries(split.train, history=artifact.history, as_of=split.cutoff).set_index(
            "user_id"
        )
        self.seen = seen

    def fit(self, train: pd.DataFrame, catalog: pd.DataFrame | None = None) -> TowerRecommender:
        return self

    def recommend(self, user_ids: Sequence[str], k: int, exclude_seen: bool = True) -> dict[str, list[str]]:
        users = [str(u) for u in user_ids]
        queries = self.queries.reindex(users)
        queries["recent_items"] = [
            v if isinstance(v, list | np.ndarray) else [] for v in queries["recent_items"]
        ]
        queries = queries.fillna(0.0).rename_axis("user_id").reset_index()
        queries["recent_items"] = queries["recent_items"].map(list)
        exclude = [self.seen.get(u, set()) if exclude_seen else set() for u in users]
        items, _ = self.artifact.search(self.artifact.embed_users(queries), k, exclude=exclude)
        return dict(zip(users, items, strict=True))


class PolicyRecommender:
    """The policy behind the evaluation ``Recommender`` protocol, with shoppers' contexts fixed at T.

    ``seen`` overrides the contexts' excluded items (evaluation excludes everything touched before the
    cutoff, unbounded, by its own protocol); without it each shopper's ``seen`` ∪ ``purchased`` is left
    out, as in ``recommend-batch`` and serving.
    """

    def __init__(self, policy: HybridPolicy, contexts: Contexts, seen: Mapping[str, set[str]] | None = None):
        self.policy = policy
        self.contexts = contexts
        self.seen = seen
        self.sources: dict[str, str] = {}

    def fit(self, train: pd.DataFrame, catalog: pd.DataFrame | None = None) -> Self:
        return self  # the parts are fitted separately; see models.training

    def recommend(self, user_ids: Sequence[str], k: int, exclude_seen: bool = True) -> dict[str, list[str]]:
        users = [str(u) for u in user_ids]
        queries = self.contexts.queries(users)
        if not exclude_seen:
            excluded: list[set[str]] = [set() for _ in users]
        elif self.seen is not None:
            excluded = [self.seen.get(u, set()) for u in users]
        else:
            excluded = queries.excluded
        recs = self.policy.recommend(queries.frame, k, excluded)
        self.sources.update({u: r.source for u, r in zip(users, recs, strict=True)})
        return {u: r.items for u, r in zip(users, recs, strict=True)}


class SequenceScorer:
    """An exported SASRec artifact behind the ``Recommender`` protocol, queries fixed at the cutoff."""

    def __init__(self, artifact: Any, split: Split, seen: Mapping[str, set[str]]):
        from feature_repo.user_recent import recent_interactions

        self.artifact = artifact
        self.queries = recent_interactions(split.train, artifact.max_len)
        self.seen = seen

    def fit(self, train: pd.DataFrame, catalog: pd.DataFrame | None = None) -> SequenceScorer:
        return self

    def recommend(self, user_ids: Sequence[str], k: int, exclude_seen: bool = True) -> dict[str, list[str]]:
        from models.sasrec.train import sequence_recommend

        return sequence_recommend(
            self.artifact, self.queries, user_ids, k, self.seen if exclude_seen else None
        )


def policy_recommender(
    policy: Any, split: Split, seen: Mapping[str, set[str]], user_features: pd.DataFrame
) -> Any:
    """The policy on the test users, each with their context as of the cutoff (the lake adapter)."""
    from models.context import from_lake

    asked = split.train.loc[split.train["user_id"].isin(split.users)]
    return PolicyRecommender(policy, from_lake(asked, as_of=split.cutoff, user_features=user_features), seen)


def per_user_of(
    layout: RunLayout, name: str, split: Split, params: TrainParams, catalog: pd.DataFrame | None
) -> pd.DataFrame:
    """A fitted model's per-user metrics on the holdout: read back if ``evaluate`` saved them, else
    scored now."""
    if layout.per_user(name).exists():
        return pd.read_parquet(layout.per_user(name))
    model = load(name, layout.model_dir(name))
    return per_user_results({name: model}, split, [params.k], catalog)[name]


def simple_baselines(
    layout: RunLayout, split: Split, params: TrainParams, catalog: pd.DataFrame | None, metric: str
) -> tuple[dict[str, pd.DataFrame], str]:
    """Per-user metrics of every ``SIMPLE_BASELINES`` model of a run, and the name of the strongest
    (highest mean ``metric`` over the run's test users): what the gate holds the policy against."""
    from models.training.params import SIMPLE_BASELINES

    baselines = {name: per_user_of(layout, name, split, params, catalog) for name in SIMPLE_BASELINES}
    return baselines, max(baselines, key=lambda name: float(baselines[name][metric].mean()))


def comparison_plot(table: pd.DataFrame, k: int) -> Any:
    """NDCG@k per model and segment with the bootstrap interval as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    col = f"ndcg@{k}"
    segments = list(dict.fromkeys(table["segment"]))
    models = list(dict.fromkeys(table["model"]))
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(models)), 4))
    width = 0.8 / max(1, len(segments))
    for s, segment in enumerate(segments):
        part = table.loc[table["segment"] == segment].set_index("model").reindex(models)
        mid = part[col].to_numpy(dtype=float)
        err = np.vstack(
            [mid - part[f"{col}_lo"].to_numpy(dtype=float), part[f"{col}_hi"].to_numpy(dtype=float) - mid]
        )
        ax.bar(
            np.arange(len(models)) + s * width, mid, width, yerr=np.nan_to_num(err), label=segment, capsize=2
        )
    ax.set_xticks(np.arange(len(models)) + width * (len(segments) - 1) / 2, models, rotation=20)
    ax.set_ylabel(col.upper())
    ax.legend()
    fig.tight_layout()
    plt.close(fig)
    return fig
