"""Training as stages on disk: prepare → train (one task per model) → evaluate → gate → register.

Each stage reads what the previous ones wrote under ``$AISLE_HOME/models/runs/<run_key>/``, so the
Airflow DAG can run the model fits as parallel tasks and ``aisle train`` can run the same functions in
one process. Everything a stage decides is also logged to the run's MLflow parent run.

The protocol, in one place: hold out the last ``holdout_days`` of the lake; fit every model on what
came before; score each test user over the whole catalog with training items excluded; compare in one
table with bootstrap intervals; gate the hybrid policy against popularity and the current champion;
then refit the policy on all data (holdout included) and register that, so serving uses the freshest
behaviour while the decision rests on an honest out-of-time test.
"""

from __future__ import annotations

import json
import logging
import pickle
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from aisle.core.errors import BadInput
from aisle.core.settings import Settings
from models import registry
from models.data import load_catalog, load_events
from models.evaluation import Split, per_user_results, subsample_users, summarize, temporal_split
from models.params import HYBRID, TrainParams

log = logging.getLogger(__name__)

Step = Callable[[str], None]
#: Progress stages of ``train_all`` (the CLI's bar is built from ``stage_names``).
PREPARE_STAGE: Final = "prepare: split, features, ranker training set"
EVALUATE_STAGE: Final = "evaluate"
GATE_STAGE: Final = "gate"
REGISTER_STAGE: Final = "refit on all data and register"


@dataclass
class RunState:
    """The run's manifest on disk (``state.json``): what each stage recorded for the next."""

    run_key: str
    mlflow_run_id: str
    params: dict[str, Any]
    cutoff: str
    stages: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def path(run_dir: Path) -> Path:
        return run_dir / "state.json"

    def save(self, run_dir: Path) -> None:
        self.path(run_dir).write_text(json.dumps(asdict(self), indent=2, default=str))

    @classmethod
    def load(cls, run_dir: Path) -> RunState:
        if not cls.path(run_dir).exists():
            raise BadInput(f"{run_dir} is not a prepared training run (no state.json)")
        return cls(**json.loads(cls.path(run_dir).read_text()))

    @property
    def train_params(self) -> TrainParams:
        return TrainParams.from_dict(self.params)


def reason_tags(reason: str) -> dict[str, str]:
    """MLflow tags of why a run happened: ``aisle.reason`` and its kind (the text before the colon)."""
    if not reason:
        return {}
    return {"aisle.reason": reason[:5000], "aisle.reason_kind": reason.split(":", 1)[0].strip()}


def run_dir(settings: Settings, run_key: str) -> Path:
    return settings.paths.models / "runs" / run_key


def _noop(_name: str) -> None:
    return None


# ---------------------------------------------------------------- stage 1: prepare


def prepare(settings: Settings, params: TrainParams, evaluate_only: bool = False) -> dict[str, Any]:
    """Split the lake in time, write the split, the feature snapshots and the ranker's training set."""
    started = time.perf_counter()
    events = load_events(settings)
    catalog = load_catalog(settings)
    split = temporal_split(events, params.holdout_days)
    if len(split.users) < params.min_test_users:
        raise BadInput(
            f"the last {params.holdout_days} day(s) hold only {len(split.users)} user(s) with new positive "
            f"interactions (need {params.min_test_users}); ingest more data or change --holdout-days"
        )
    if split.train.empty:
        raise BadInput(f"no events before the {params.holdout_days}-day holdout; lower --holdout-days")
    run_key = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
    out = run_dir(settings, run_key)
    (out / "data").mkdir(parents=True, exist_ok=True)
    split.train.to_parquet(out / "data" / "train.parquet", index=False)
    split.test.to_parquet(out / "data" / "test.parquet", index=False)
    if catalog is not None:
        catalog.to_parquet(out / "data" / "catalog.parquet", index=False)
    snapshot = data_snapshot(settings, events, split)
    with registry.start_run(settings, "evaluate" if evaluate_only else "train") as run:
        import mlflow

        mlflow.set_tags(
            {
                "aisle.run_key": run_key,
                "aisle.kind": "evaluate" if evaluate_only else "train",
                **reason_tags(params.reason),
            }
        )
        mlflow.log_params(
            {f"param.{k}": (",".join(v) if isinstance(v, tuple) else v) for k, v in asdict(params).items()}
        )
        mlflow.log_params({f"data.{k}": v for k, v in snapshot.items()})
        mlflow.log_dict(snapshot, "data_snapshot.json")
        registry.log_lake_input(settings, snapshot)
        state = RunState(run_key, run.info.run_id, asdict(params), split.cutoff.isoformat())
    summary: dict[str, Any] = {"run_key": run_key, "mlflow_run_id": state.mlflow_run_id, **snapshot}
    if params.hybrid:
        summary["ranker_training_set"], _ = _ranker_set(
            settings, split.train, catalog, params, out / "data" / "ranker.parquet"
        )
        users, items = _snapshot_entities(split, catalog)
        summary["feature_snapshot"] = _feature_snapshot(settings, users, items, split.cutoff, out / "data")
    summary["seconds"] = round(time.perf_counter() - started, 3)
    state.stages["prepare"] = summary
    state.save(out)
    return summary


def data_snapshot(settings: Settings, events: pd.DataFrame, split: Split) -> dict[str, Any]:
    """What data a run used, precisely enough to tell two runs' inputs apart."""
    digest = pd.util.hash_pandas_object(events.get("event_id", events), index=False)
    return {
        "lake": str(settings.paths.lake),
        "events": len(events),
        "users": int(events["user_id"].nunique()),
        "items": int(events["item_id"].nunique()),
        "first_ts": events["ts"].min().isoformat(),
        "last_ts": events["ts"].max().isoformat(),
        "cutoff": split.cutoff.isoformat(),
        "train_events": len(split.train),
        "test_events": len(split.test),
        "test_users": len(split.users),
        "test_users_with_history": len(split.with_history),
        "events_digest": f"{int(digest.sum()) & 0xFFFFFFFFFFFFFFFF:016x}",
    }


def _ranker_set(
    settings: Settings, events: pd.DataFrame, catalog: pd.DataFrame | None, params: TrainParams, path: Path
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The ranker's training set, built the way the policy will use the ranker.

    Stage-1 retrieval (two-tower, co-occurrence, trending) is fitted on everything before the label
    window and asked for candidates as of the window's start; the user's interactions in the window
    are the graded positives, and ``negatives`` per positive are sampled from those candidates the
    user did not touch. Every row carries the stage-1 retrieval scores and Feast's point-in-time
    features at the label's time. Fitting stage 1 on the earlier data keeps the retrieval scores as
    uninformed about the labels as they will be about tomorrow's clicks at serving time.
    """
    from models.features import feature_coverage, ranker_training_set

    started = time.perf_counter()
    window_start = events["ts"].max() - pd.Timedelta(days=params.label_days)
    before = events.loc[events["ts"] < window_start]
    window = events.loc[events["ts"] >= window_start]
    if before.empty or window.empty:
        raise BadInput(
            f"the ranker needs events both before and within its {params.label_days}-day label window; "
            "ingest more history or lower label_days"
        )
    stage1 = stage1_policy(before, catalog, params)
    cold_start, cold_ndcg = choose_cold_start(stage1, before, window, params.k)
    labels = window_labels(stage1, before, window, params)
    if labels.empty or labels["label"].nunique() < 2:
        raise BadInput("too few interactions in the label window to train the ranker; raise label_days")
    frame = ranker_training_set(settings, labels)
    coverage = feature_coverage(frame)
    if coverage < 0.05:
        raise BadInput(
            f"the ranker's training set has almost no features (coverage {coverage:.1%}); "
            "run `aisle features build` before `aisle train`"
        )
    frame.to_parquet(path, index=False)
    info = {
        "rows": len(frame),
        "positives": int((frame["label"] > 0).sum()),
        "negatives": int((frame["label"] == 0).sum()),
        "label_window_start": window_start.isoformat(),
        "feature_coverage": round(coverage, 4),
        "cold_start": cold_start,
        "cold_start_ndcg": cold_ndcg,
        "seconds": round(time.perf_counter() - started, 3),
    }
    path.with_suffix(".json").write_text(json.dumps(info, indent=2))
    return info, frame


def choose_cold_start(
    policy: Any, before: pd.DataFrame, window: pd.DataFrame, k: int
) -> tuple[str, dict[str, float]]:
    """Trending or popularity for shoppers with no history: whichever ranked the label window's new
    shoppers better (NDCG@k, stage-1 fits). Decided on training data only, so the test days stay unseen.
    """
    from models.evaluation import RELEVANCE_GRADES, ranking_metrics
    from models.hybrid import COLD_SOURCES, ranked_order

    grades = window["event_type"].map(RELEVANCE_GRADES)
    fresh = window.loc[grades.notna() & ~window["user_id"].isin(before["user_id"]), ["user_id", "item_id"]]
    relevant = (
        fresh.assign(grade=grades)
        .groupby("user_id")[["item_id", "grade"]]
        .apply(lambda part: dict(zip(part["item_id"], part["grade"], strict=True)))
    )
    scores: dict[str, float] = {}
    for source in COLD_SOURCES:
        top = [str(i) for i in policy.item_ids[ranked_order(policy.item_ids, getattr(policy, source))][:k]]
        values = [ranking_metrics(top, rel, k)["ndcg"] for rel in relevant]
        scores[source] = round(float(np.mean(values)), 5) if values else float("nan")
    best = max(COLD_SOURCES, key=lambda s: scores[s] if np.isfinite(scores[s]) else -1.0)
    return best, scores


def two_tower(params: TrainParams) -> Any:
    """An unfitted two-tower model configured from the run's parameters."""
    from models.two_tower.train import TwoTowerConfig, TwoTowerRecommender

    config = TwoTowerConfig(
        embedding_dim=params.embedding_dim,
        epochs=params.epochs,
        learning_rate=params.learning_rate,
        seed=params.seed,
    )
    return TwoTowerRecommender(config)


def stage1_policy(events: pd.DataFrame, catalog: pd.DataFrame | None, params: TrainParams) -> Any:
    """Retrieval fitted on ``events`` only: a candidate generator (no ranker) for the label window."""
    from models.baselines import CooccurrenceRecommender, PopularityRecommender, TrendingRecommender
    from models.hybrid import HybridPolicy

    tower = two_tower(params).fit(events, catalog)
    cooc = CooccurrenceRecommender().fit(events, catalog)
    trending = TrendingRecommender().fit(events, catalog)
    popularity = PopularityRecommender().fit(events, catalog)
    return HybridPolicy(
        retriever=tower,
        ranker=None,
        item_ids=cooc.item_ids_,
        cooccurrence=cooc.cooccurrence_,
        trending=_aligned(trending.trending_, trending.item_ids_, cooc.item_ids_),
        popularity=_aligned(popularity.popularity_, popularity.item_ids_, cooc.item_ids_),
        item_features=pd.DataFrame(index=pd.Index([], name="item_id")),
    )


def window_labels(
    policy: Any, before: pd.DataFrame, window: pd.DataFrame, params: TrainParams
) -> pd.DataFrame:
    """Stage-1 candidates as of the window's start, each labelled with the strongest thing the user
    then did with it (purchase 3 > cart 2 > view 1 > nothing 0); all positive candidates are kept and
    ``negatives`` unlabelled candidates per positive are sampled.

    Labelling candidates, rather than adding the window's interactions as positives, matters: items
    the user found outside retrieval's reach would all have low retrieval scores while the sampled
    negatives have high ones, and the ranker would learn to distrust retrieval (measured: tower-score
    AUC 0.33 on such a set, i.e. inverted).
    """
    from models.context import from_lake
    from models.evaluation import RELEVANCE_GRADES
    from models.hybrid import TOWER_COUNTERS
    from models.two_tower.train import user_queries

    grades = window["event_type"].map(RELEVANCE_GRADES)
    pos = window.loc[grades.notna(), ["user_id", "item_id"]].assign(label=grades.dropna().astype(int))
    pos = pos.groupby(["user_id", "item_id"], as_index=False)["label"].max()
    users = sorted(pos["user_id"].unique())
    # the shoppers' contexts as of the window's start (what the policy would have known), plus the
    # tower's activity counters over the same earlier data
    asked = before.loc[before["user_id"].isin(users)]
    queries = from_lake(asked).queries(users)
    counters = user_queries(asked, history=1).set_index("user_id")[list(TOWER_COUNTERS)]
    frame = queries.frame.join(counters, on="user_id").fillna({c: 0.0 for c in TOWER_COUNTERS})
    candidates, _, _ = policy.candidates(frame, queries.excluded)
    labelled = candidates.merge(pos, on=["user_id", "item_id"], how="left")
    labelled["label"] = labelled["label"].fillna(0).astype(int)
    positives = labelled.loc[labelled["label"] > 0]
    rng = np.random.default_rng(params.seed)
    unlabelled = labelled.loc[labelled["label"] == 0]
    n_neg = min(len(unlabelled), len(positives) * params.negatives)
    negatives = unlabelled.iloc[np.sort(rng.choice(len(unlabelled), n_neg, replace=False))]
    rows = pd.concat([positives, negatives], ignore_index=True)
    if len(rows) > params.max_label_rows:
        rows = rows.iloc[np.sort(rng.choice(len(rows), params.max_label_rows, replace=False))]
    rows["event_timestamp"] = window["ts"].min()  # features as known when the candidates were made
    return rows[["user_id", "item_id", "event_timestamp", "label", "tower_score", "cooc_score"]].reset_index(
        drop=True
    )


def _snapshot_entities(split: Split, catalog: pd.DataFrame | None) -> tuple[list[str], list[str]]:
    users = sorted(set(split.users.astype(str)))
    items = set(split.train["item_id"]) | set(split.test["item_id"])
    if catalog is not None:
        items |= set(catalog["item_id"])
    return users, sorted(items)


def _feature_snapshot(
    settings: Settings, users: list[str], items: list[str], as_of: pd.Timestamp, out: Path
) -> dict[str, Any]:
    from models.features import snapshot_features

    user_df, item_df = snapshot_features(settings, users, items, as_of)
    user_df.reset_index().to_parquet(out / "user_features.parquet", index=False)
    item_df.reset_index().to_parquet(out / "item_features.parquet", index=False)
    return {"as_of": as_of.isoformat(), "users": len(user_df), "items": len(item_df)}


# ---------------------------------------------------------------- stage 2: train one model


def _catalog(out: Path) -> pd.DataFrame | None:
    path = out / "data" / "catalog.parquet"
    return pd.read_parquet(path) if path.exists() else None


def _train_data(out: Path) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    return pd.read_parquet(out / "data" / "train.parquet"), _catalog(out)


def fit_model(
    settings: Settings,
    name: str,
    params: TrainParams,
    events: pd.DataFrame,
    catalog: pd.DataFrame | None,
    ranker_frame: pd.DataFrame | None,
    target: Path,
) -> dict[str, Any]:
    """Fit one model on ``events`` and save it under ``target`` (a directory); returns fit stats."""
    target.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    stats: dict[str, Any] = {}
    if name == "two_tower":
        from models.two_tower.export import export as export_tower

        tower = two_tower(params).fit(events, catalog)
        export_tower(tower, target)
        stats = {"examples": tower.examples_, "epochs": tower.epochs_run_, "final_loss": tower.history_[-1]}
    elif name == "wide_deep":
        from models.features import RANKER_SPEC
        from models.wide_deep.export import export as export_ranker
        from models.wide_deep.train import WideDeepConfig, WideDeepRanker

        if ranker_frame is None:
            raise BadInput("the Wide & Deep ranker needs the prepared training set (run prepare first)")
        ranker = WideDeepRanker(
            RANKER_SPEC,
            WideDeepConfig(
                epochs=params.epochs,
                learning_rate=params.ranker_learning_rate,
                batch_size=256,
                seed=params.seed,
            ),
        ).fit(ranker_frame)
        export_ranker(ranker, target)
        stats = {
            "examples": ranker.examples_,
            "epochs": ranker.epochs_run_,
            "final_loss": ranker.history_["loss"][-1],
        }
    else:
        model = _baseline(settings, name, params).fit(events, catalog)
        with open(target / "model.pkl", "wb") as fh:
            pickle.dump(model, fh, protocol=pickle.HIGHEST_PROTOCOL)
    stats["fit_seconds"] = round(time.perf_counter() - started, 3)
    stats["train_events"] = len(events)
    return stats


def _baseline(settings: Settings, name: str, params: TrainParams) -> Any:
    from models.baselines import (
        ALSRecommender,
        CooccurrenceRecommender,
        ItemKNNRecommender,
        PopularityRecommender,
        TrendingRecommender,
    )

    factories: dict[str, Callable[[], Any]] = {
        "popularity": PopularityRecommender,
        "trending": TrendingRecommender,
        "cooccurrence": CooccurrenceRecommender,
        "item_knn": ItemKNNRecommender,
        "als": lambda: ALSRecommender(settings, max_iter=params.als_iterations, seed=params.seed),
    }
    return factories[name]()


def train(settings: Settings, run_key: str, name: str) -> dict[str, Any]:
    """Stage 2 for one model: fit on the run's training split, log a nested MLflow run."""
    out = run_dir(settings, run_key)
    state = RunState.load(out)
    params = state.train_params
    if name not in params.fitted():
        raise BadInput(f"model {name!r} is not part of run {run_key} ({', '.join(params.fitted())})")
    events, catalog = _train_data(out)
    ranker_path = out / "data" / "ranker.parquet"
    ranker_frame = pd.read_parquet(ranker_path) if name == "wide_deep" and ranker_path.exists() else None
    stats = fit_model(settings, name, params, events, catalog, ranker_frame, out / "models" / name)
    with registry.start_run(settings, name, parent=state.mlflow_run_id):
        import mlflow

        mlflow.set_tags({"aisle.run_key": run_key, "aisle.model": name})
        mlflow.log_params({"model": name, "seed": params.seed})
        mlflow.log_metrics({k: float(v) for k, v in stats.items() if isinstance(v, int | float)})
    (out / "models" / name / "stats.json").write_text(json.dumps(stats, default=str))
    return {"model": name, **stats}


# ---------------------------------------------------------------- stage 3: evaluate


def _load_baseline(path: Path) -> Any:
    with open(path / "model.pkl", "rb") as fh:
        return pickle.load(fh)  # our own artifact, written by this run


class TowerRecommender:
    """An exported two-tower artifact behind the ``Recommender`` protocol, queries fixed at the cutoff."""

    def __init__(self, artifact: Any, split: Split, seen: dict[str, set[str]]):
        from models.two_tower.train import user_queries

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


def load_policy_parts(settings: Settings, out: Path, meta: dict[str, Any]) -> Any:
    """The hybrid policy from this run's fitted parts (artifacts, as serving would load them)."""
    from models.hybrid import HybridPolicy, PolicyConfig
    from models.two_tower.export import TwoTowerArtifact
    from models.wide_deep.export import WideDeepArtifact

    models_dir = out / "models"
    popularity = _load_baseline(models_dir / "popularity")
    trending = _load_baseline(models_dir / "trending")
    cooc = _load_baseline(models_dir / "cooccurrence")
    features = pd.read_parquet(out / "data" / "item_features.parquet").set_index("item_id")
    ranker_info = json.loads((out / "data" / "ranker.json").read_text())
    return HybridPolicy(
        retriever=TwoTowerArtifact.load(models_dir / "two_tower"),
        ranker=WideDeepArtifact.load(models_dir / "wide_deep"),
        item_ids=cooc.item_ids_,
        cooccurrence=cooc.cooccurrence_,
        trending=_aligned(trending.trending_, trending.item_ids_, cooc.item_ids_),
        popularity=_aligned(popularity.popularity_, popularity.item_ids_, cooc.item_ids_),
        item_features=features,
        config=PolicyConfig(cold_start=ranker_info["cold_start"]),
        meta=meta,
    )


def _aligned(values: np.ndarray, ids: np.ndarray, target: np.ndarray) -> np.ndarray:
    return pd.Series(values, index=ids).reindex(target).fillna(0.0).to_numpy()


def _user_features(out: Path) -> pd.DataFrame:
    """The Feast user features as of the cutoff, snapshotted by ``prepare``."""
    return pd.read_parquet(out / "data" / "user_features.parquet").set_index("user_id")


def _policy_recommender(
    policy: Any, split: Split, seen: dict[str, set[str]], user_features: pd.DataFrame
) -> Any:
    """The policy on the test users, each with their context as of the cutoff (the lake adapter)."""
    from models.context import from_lake
    from models.hybrid import PolicyRecommender

    asked = split.train.loc[split.train["user_id"].isin(split.users)]
    return PolicyRecommender(policy, from_lake(asked, user_features=user_features), seen)


def _split_from_disk(out: Path, params: TrainParams) -> Split:
    """The run's split, re-derived from its saved halves, scored on at most ``max_eval_users``."""
    train = pd.read_parquet(out / "data" / "train.parquet")
    test = pd.read_parquet(out / "data" / "test.parquet")
    split = temporal_split(pd.concat([train, test], ignore_index=True), params.holdout_days)
    return subsample_users(split, params.max_eval_users, params.seed)


def evaluate(settings: Settings, run_key: str, step: Step = _noop) -> dict[str, Any]:
    """Stage 3: every fitted model and the hybrid on the holdout, one table, logged to MLflow."""
    out = run_dir(settings, run_key)
    state = RunState.load(out)
    params = state.train_params
    split = _split_from_disk(out, params)
    catalog = _catalog(out)
    seen = split.seen_items()
    models: dict[str, Any] = {}
    for name in params.models:
        if name == "wide_deep":
            continue  # a ranker, scored inside the hybrid rather than over the whole catalog
        step(f"load {name}")
        if name == "two_tower":
            from models.two_tower.export import TwoTowerArtifact

            models[name] = TowerRecommender(TwoTowerArtifact.load(out / "models" / name), split, seen)
        else:
            models[name] = _load_baseline(out / "models" / name)
    if params.hybrid:
        models[HYBRID] = _policy_recommender(
            load_policy_parts(settings, out, {}), split, seen, _user_features(out)
        )
    step("score the holdout")
    k_values = sorted({params.k, 20})
    per_user = per_user_results(models, split, k_values, catalog)
    catalog_items = (
        catalog["item_id"].astype(str).tolist()
        if catalog is not None
        else sorted(set(split.train["item_id"]) | set(split.test["item_id"]))
    )
    table = summarize(per_user, k_values, catalog_items, n_boot=params.n_boot, seed=params.seed)
    for name, frame in per_user.items():
        frame.drop(columns=[c for c in frame.columns if c.startswith("_")]).to_parquet(
            out / "models" / f"per_user_{name}.parquet", index=False
        )
    table.to_csv(out / "comparison.csv", index=False)
    extra: dict[str, Any] = {}
    if "als" in params.models:
        from models.baselines.als import rating_rmse

        step("ALS rating RMSE")
        extra["als_rating"] = rating_rmse(split.train, split.test, settings, seed=params.seed)
    step("log to MLflow")
    _log_evaluation(settings, state, table, extra, params.k)
    key = f"ndcg@{params.k}"
    summary = {
        "models": list(models),
        "test_users": len(split.users),
        "with_history": len(split.with_history),
        "without_history": len(split.without_history),
        key: {
            f"{model}/{segment}": round(float(value), 4)
            for model, segment, value in table[["model", "segment", key]].itertuples(index=False)
        },
        "table": str(out / "comparison.csv"),
        **extra,
    }
    state.stages["evaluate"] = summary
    state.save(out)
    return summary


def _log_evaluation(
    settings: Settings, state: RunState, table: pd.DataFrame, extra: dict[str, Any], k: int
) -> None:
    import mlflow

    with registry.start_run(settings, "", run_id=state.mlflow_run_id):
        registry.log_frame(settings, table, "evaluation/comparison.json")
        metrics = {}
        for row in table.to_dict("records"):
            for col in (f"ndcg@{k}", f"recall@{k}", f"map@{k}", f"hit_rate@{k}", f"coverage@{k}"):
                value = row.get(col)
                if value is not None and np.isfinite(value):
                    metrics[f"{row['model']}.{row['segment']}.{col.replace('@', '_at_')}"] = float(value)
        mlflow.log_metrics(metrics)
        rmse = (extra.get("als_rating") or {}).get("rmse")
        if rmse is not None:
            mlflow.log_metric("als.rating_rmse", float(rmse))
        mlflow.log_figure(comparison_plot(table, k), "evaluation/ndcg.png")


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


# ---------------------------------------------------------------- stage 4: gate


def gate(settings: Settings, run_key: str, step: Step = _noop) -> dict[str, Any]:
    """Stage 4: challenger (this run's hybrid) vs popularity and the current champion, plus behaviour."""
    out = run_dir(settings, run_key)
    state = RunState.load(out)
    params = state.train_params
    if not params.hybrid:
        raise BadInput("the gate needs the hybrid policy: train both two_tower and wide_deep")
    split = _split_from_disk(out, params)
    catalog = _catalog(out)
    seen = split.seen_items()
    user_features = _user_features(out)
    metric = f"ndcg@{params.k}"
    challenger = pd.read_parquet(out / "models" / f"per_user_{HYBRID}.parquet")
    references = {"popularity": _per_user_popularity(out, split, params, catalog)}
    champion_version = registry.alias_version(settings, registry.CHAMPION)
    notes: list[str] = []
    if champion_version is not None:
        step(f"score champion v{champion_version}")
        from models.hybrid import HybridPolicy

        policy_dir, _ = registry.download_policy(settings, version=champion_version)
        champion = _policy_recommender(HybridPolicy.load(policy_dir), split, seen, user_features)
        references[f"champion_v{champion_version}"] = per_user_results(
            {"c": champion}, split, [params.k], catalog
        )["c"]
        notes.append(
            "the champion was refit on all data it had, which may overlap this holdout; that can only "
            "flatter the champion, so the comparison errs against the challenger"
        )
    step("behavioural checks")
    challenger_rec = _policy_recommender(load_policy_parts(settings, out, {}), split, seen, user_features)
    catalog_items = (
        set(catalog["item_id"].astype(str)) if catalog is not None else set(split.train["item_id"])
    )
    sample = [str(u) for u in split.users[:: max(1, len(split.users) // 50)]][:50]
    checks = registry.behavioural_checks(challenger_rec.recommend, sample, seen, catalog_items, params.k)
    decision = registry.quality_gate(
        challenger, references, checks, metric=metric, n_boot=params.n_boot, seed=params.seed
    )
    result = {**decision.to_dict(), "metric": metric, "champion_before": champion_version, "notes": notes}
    (out / "gate.json").write_text(json.dumps(result, indent=2, default=str))
    with registry.start_run(settings, "", run_id=state.mlflow_run_id):
        import mlflow

        mlflow.log_dict(result, "gate.json")
        mlflow.set_tags(
            {"gate.passed": str(decision.passed), "gate.reasons": "; ".join(decision.reasons)[:4000]}
        )
    if not decision.passed:
        log.warning("quality gate refused the challenger: %s", "; ".join(decision.reasons))
    state.stages["gate"] = result
    state.save(out)
    return result


def _per_user_popularity(
    out: Path, split: Split, params: TrainParams, catalog: pd.DataFrame | None
) -> pd.DataFrame:
    path = out / "models" / "per_user_popularity.parquet"
    if path.exists():
        return pd.read_parquet(path)
    model = _load_baseline(out / "models" / "popularity")
    return per_user_results({"p": model}, split, [params.k], catalog)["p"]


# ---------------------------------------------------------------- stage 5: refit on everything and register


def register(settings: Settings, run_key: str, step: Step = _noop) -> dict[str, Any]:
    """Stage 5: refit the policy's parts on all data, export it, register it, promote if the gate passed."""
    out = run_dir(settings, run_key)
    state = RunState.load(out)
    params = state.train_params
    decision = state.stages.get("gate")
    if decision is None:
        raise BadInput(f"run {run_key} has not been through the gate yet")
    events = load_events(settings)
    catalog = load_catalog(settings)
    final = out / "final"
    (final / "data").mkdir(parents=True, exist_ok=True)
    step("ranker training set on all data")
    ranker_info, ranker_frame = _ranker_set(
        settings, events, catalog, params, final / "data" / "ranker.parquet"
    )
    fits = {}
    for name in ("popularity", "trending", "cooccurrence", "two_tower", "wide_deep"):
        step(f"refit {name} on all data")
        fits[name] = fit_model(
            settings,
            name,
            params,
            events,
            catalog,
            ranker_frame if name == "wide_deep" else None,
            final / "models" / name,
        )
    step("item features, newest")
    as_of = events["ts"].max() + pd.Timedelta(microseconds=1)
    items = sorted(set(events["item_id"]) | (set(catalog["item_id"]) if catalog is not None else set()))
    _feature_snapshot(settings, [], items, as_of, final / "data")
    meta = {
        "run_key": run_key,
        "mlflow_run_id": state.mlflow_run_id,
        "trained_through": events["ts"].max().isoformat(),
        "events": len(events),
        "params": state.params,
        "gate": {"passed": decision["passed"], "reasons": decision["reasons"]},
    }
    policy = load_policy_parts(settings, final, meta)
    policy_dir = final / "policy"
    step("export policy")
    shutil.copytree(final / "models" / "two_tower", policy_dir / "two_tower", dirs_exist_ok=True)
    shutil.copytree(final / "models" / "wide_deep", policy_dir / "wide_deep", dirs_exist_ok=True)
    policy.export(policy_dir)
    step("register in MLflow")
    metric = decision["metric"].replace("@", "_at_")  # MLflow tag names allow no "@"
    comparisons = decision.get("comparisons", {})
    tags = {
        "aisle.run_key": run_key,
        "trained_through": meta["trained_through"],
        "gate.passed": str(decision["passed"]),
        **reason_tags(params.reason),
        f"{metric}.challenger": f"{comparisons.get('popularity', {}).get('challenger', float('nan')):.4f}",
        f"{metric}.popularity": f"{comparisons.get('popularity', {}).get('popularity', float('nan')):.4f}",
    }
    version = registry.register_policy(settings, state.mlflow_run_id, policy_dir, tags)
    promoted = None
    if decision["passed"]:
        why = f"quality gate passed in run {run_key}" + (f" ({params.reason})" if params.reason else "")
        promoted = registry.promote(settings, version, why)
    summary = {
        "version": version,
        "alias": registry.CHAMPION if promoted else registry.CHALLENGER,
        "promoted": promoted is not None,
        "gate_passed": decision["passed"],
        "gate_reasons": decision["reasons"],
        "refit": {name: stats.get("fit_seconds") for name, stats in fits.items()},
        "ranker_training_set": ranker_info,
        "policy_dir": str(policy_dir),
    }
    state.stages["register"] = summary
    state.save(out)
    return summary


# ---------------------------------------------------------------- one process: what `aisle train` runs


def train_all(
    settings: Settings, params: TrainParams, step: Step = _noop, register_model: bool = True
) -> dict[str, Any]:
    """prepare → train each model → evaluate → (gate → register). The CLI's and demo's entry point."""
    started = time.perf_counter()
    step(PREPARE_STAGE)
    prepared = prepare(settings, params, evaluate_only=not register_model)
    run_key = prepared["run_key"]
    trained = {}
    for name in params.fitted():
        step(f"train {name}")
        trained[name] = train(settings, run_key, name)
    step(EVALUATE_STAGE)
    evaluation = evaluate(settings, run_key)
    summary: dict[str, Any] = {
        "run_key": run_key,
        "mlflow_run_id": prepared["mlflow_run_id"],
        "prepare": prepared,
        "train": trained,
        "evaluate": evaluation,
    }
    if register_model and params.hybrid:
        step(GATE_STAGE)
        summary["gate"] = gate(settings, run_key)
        step(REGISTER_STAGE)
        summary["register"] = register(settings, run_key)
    elif register_model:
        summary["register"] = {"skipped": "the registered policy needs two_tower and wide_deep"}
    summary["seconds"] = round(time.perf_counter() - started, 3)
    return summary


def stage_names(params: TrainParams, register_model: bool = True) -> list[str]:
    names = [PREPARE_STAGE, *(f"train {n}" for n in params.fitted()), EVALUATE_STAGE]
    if register_model and params.hybrid:
        names += [GATE_STAGE, REGISTER_STAGE]
    return names
