"""The training stages: prepare → fit (one per model) → evaluate → gate → register, and all of them at once.

Each stage reads what the previous ones wrote in the run's layout (``models.training.layout``), so the
Airflow DAG runs the fits as parallel tasks and ``aisle train`` runs the same functions in one process;
everything a stage decides is also logged to the run's MLflow parent run (through ``models.registry``).

The protocol, in one place: cut the lake in time (``models.splits``: by default the last 10% of the events
are the test period, the last 10% of the rest the validation period); fit every model on what came
before; score each test user over the whole catalog with training items excluded; compare in one table
with bootstrap intervals; gate the hybrid policy against popularity and the current champion; then refit
the policy on all data (holdout included) and register that, so serving uses the freshest behaviour
while the decision rests on an honest out-of-time test.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any, Final

import numpy as np
import pandas as pd

from aisle.core.errors import BadInput
from aisle.core.settings import Settings
from models import registry
from models.data import load_catalog, load_events
from models.evaluation import Split, per_user_results, summarize
from models.gate import behavioural_checks, quality_gate
from models.splits import holdout, validation
from models.training.layout import RunLayout, RunState
from models.training.params import HYBRID, LEARNED, POLICY_PARTS, SEQUENCE, TrainParams
from models.training.policy import load_policy, write_signals
from models.training.ranker_data import feature_snapshot, ranker_set, snapshot_entities
from models.training.scoring import (
    comparison_plot,
    policy_recommender,
    read_catalog,
    read_split,
    read_user_features,
    simple_baselines,
)
from models.training.table import FitInputs, entry, fit_and_save, load

log = logging.getLogger(__name__)

Step = Callable[[str], None]
#: Progress stages of ``train_all`` (the CLI's bar is built from ``stage_names``).
PREPARE_STAGE: Final = "prepare: split, features, ranker training set"
EVALUATE_STAGE: Final = "evaluate"
GATE_STAGE: Final = "gate"
REGISTER_STAGE: Final = "refit on all data and register"


def _noop(_name: str) -> None:
    return None


# ---------------------------------------------------------------- stage 1: prepare


def prepare(settings: Settings, params: TrainParams, evaluate_only: bool = False) -> dict[str, Any]:
    """Split the lake in time, write the split, the feature snapshots and the ranker's training set."""
    started = time.perf_counter()
    events = load_events(settings)
    catalog = load_catalog(settings)
    split = holdout(events, params.spec, min_users=params.min_test_users)
    run_key = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
    layout = RunLayout.of(settings, run_key)
    layout.data.mkdir(parents=True, exist_ok=True)
    split.train.to_parquet(layout.train_events, index=False)
    split.test.to_parquet(layout.test_events, index=False)
    if catalog is not None:
        catalog.to_parquet(layout.catalog, index=False)
    snapshot = data_snapshot(settings, events, split)
    kind = "evaluate" if evaluate_only else "train"
    run_id = registry.log_run_start(settings, kind, run_key, asdict(params), snapshot)
    state = RunState(run_key, run_id, asdict(params), split.cutoff.isoformat())
    summary: dict[str, Any] = {"run_key": run_key, "mlflow_run_id": run_id, **snapshot}
    summary["tuning"] = _tune(split.train, catalog, params, layout)
    if params.hybrid:
        write_signals(split.train, layout, _policy_items(split.train, catalog))
        summary["ranker_training_set"], _ = ranker_set(
            settings, split.train, catalog, params, layout, summary["tuning"]
        )
        users, items = snapshot_entities(split, catalog)
        summary["feature_snapshot"] = feature_snapshot(settings, users, items, split.cutoff, layout)
    summary["seconds"] = round(time.perf_counter() - started, 3)
    return state.record(layout, "prepare", summary)


def _tune(events: pd.DataFrame, catalog: pd.DataFrame | None, params: TrainParams, layout: RunLayout) -> Any:
    """Tune the tunable models on the validation period cut from ``events`` (the run's training data);
    the decisions are written to the layout, where every fit of the run reads them."""
    from models.tuning import TUNABLE, tune

    names = tuple(n for n in TUNABLE if n in params.fitted())
    decided = tune(
        validation(events, params.spec), catalog, names, params.k, params.tuning_trials, params.seed
    )
    layout.tuning.write_text(json.dumps(decided, indent=2))
    return decided


def _tuned(layout: RunLayout) -> dict[str, Any]:
    return dict(json.loads(layout.tuning.read_text())) if layout.tuning.exists() else {}


def _policy_items(events: pd.DataFrame, catalog: pd.DataFrame | None) -> Any:
    """The policy's item universe (what the co-occurrence part fits on): events' items ∪ the catalog."""
    items = set(events["item_id"].astype(str))
    if catalog is not None:
        items |= set(catalog["item_id"].astype(str))
    return np.asarray(sorted(items), dtype=object)


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


# ---------------------------------------------------------------- stage 2: fit one model


def train(settings: Settings, run_key: str, name: str) -> dict[str, Any]:
    """Fit one model on the run's training split and save it; log a nested MLflow run."""
    layout, state = RunState.open(settings, run_key)
    params = state.train_params
    if name not in params.fitted():
        raise BadInput(f"model {name!r} is not part of run {run_key} ({', '.join(params.fitted())})")
    ranker_frame = None
    if entry(name).kind == "ranker" and layout.ranker_set.exists():
        ranker_frame = pd.read_parquet(layout.ranker_set)
    inputs = FitInputs(
        settings,
        params,
        pd.read_parquet(layout.train_events),
        read_catalog(layout),
        ranker_frame,
        _tuned(layout),
    )
    stats = fit_and_save(name, inputs, layout.model_dir(name))
    registry.log_fit(settings, state.mlflow_run_id, run_key, name, params.seed, stats)
    layout.model_stats(name).write_text(json.dumps(stats, default=str))
    return {"model": name, **stats}


# ---------------------------------------------------------------- stage 3: evaluate


def evaluate(settings: Settings, run_key: str, step: Step = _noop) -> dict[str, Any]:
    """Every fitted model and the hybrid on the holdout, one table, logged to MLflow."""
    layout, state = RunState.open(settings, run_key)
    params = state.train_params
    split = read_split(layout, params, state.cutoff)
    catalog = read_catalog(layout)
    seen = split.seen_items()
    models: dict[str, Any] = {}
    for name in params.models:
        scorer = entry(name).scorer
        if scorer is None:
            continue  # scored inside the hybrid rather than over the whole catalog
        step(f"load {name}")
        models[name] = scorer(load(name, layout.model_dir(name)), split, seen)
    if params.hybrid:
        models[HYBRID] = policy_recommender(load_policy(layout), split, seen, read_user_features(layout))
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
            layout.per_user(name), index=False
        )
    table.to_csv(layout.comparison, index=False)
    extra: dict[str, Any] = {}
    if "als" in params.models:
        from models.baselines.als import rating_rmse

        step("ALS rating RMSE")
        extra["als_rating"] = rating_rmse(split.train, split.test, settings, seed=params.seed)
    step("log to MLflow")
    registry.log_evaluation(
        settings, state.mlflow_run_id, table, extra, params.k, comparison_plot(table, params.k)
    )
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
        "table": str(layout.comparison),
        **extra,
    }
    return state.record(layout, "evaluate", summary)


# ---------------------------------------------------------------- stage 4: gate


def gate(settings: Settings, run_key: str, step: Step = _noop, folds: Sequence[str] = ()) -> dict[str, Any]:
    """Challenger (this run's hybrid) vs popularity, the strongest simple baseline and the current
    champion, plus behaviour; with ``folds`` (run keys of earlier backtest cut-offs, evaluated with the
    hybrid), also vs the strongest simple baseline of each fold (``models.training.backtest``)."""
    layout, state = RunState.open(settings, run_key)
    params = state.train_params
    if not params.hybrid:
        raise BadInput("the gate needs the hybrid policy: train both two_tower and wide_deep")
    split = read_split(layout, params, state.cutoff)
    catalog = read_catalog(layout)
    seen = split.seen_items()
    user_features = read_user_features(layout)
    metric = f"ndcg@{params.k}"
    challenger = pd.read_parquet(layout.per_user(HYBRID))
    baselines, strongest = simple_baselines(layout, split, params, catalog, metric)
    references = {"popularity": baselines["popularity"], strongest: baselines[strongest]}
    champion_version = registry.alias_version(settings, registry.CHAMPION)
    notes: list[str] = []
    if champion_version is not None:
        step(f"score champion v{champion_version}")
        from models.hybrid import HybridPolicy

        policy_dir, _ = registry.download_policy(settings, version=champion_version)
        champion = policy_recommender(HybridPolicy.load(policy_dir), split, seen, user_features)
        references[f"champion_v{champion_version}"] = per_user_results(
            {"c": champion}, split, [params.k], catalog
        )["c"]
        notes.append(
            "the champion was refit on all data it had, which may overlap this holdout; that can only "
            "flatter the champion, so the comparison errs against the challenger"
        )
    step("behavioural checks")
    challenger_rec = policy_recommender(load_policy(layout), split, seen, user_features)
    catalog_items = (
        set(catalog["item_id"].astype(str)) if catalog is not None else set(split.train["item_id"])
    )
    sample = [str(u) for u in split.users[:: max(1, len(split.users) // 50)]][:50]
    checks = behavioural_checks(challenger_rec.recommend, sample, seen, catalog_items, params.k)
    decision = quality_gate(
        challenger, references, checks, metric=metric, n_boot=params.n_boot, seed=params.seed
    )
    backtested = []
    if folds:
        from models.training.backtest import gate_folds

        step("earlier backtest folds")
        backtested = gate_folds(settings, folds, decision, metric)
    if len(folds) < params.backtest - 1:
        notes.append(
            f"backtest {params.backtest} asked for {params.backtest - 1} earlier cut-off(s) and the gate "
            f"held the policy against {len(folds)} (too little data before the cut, or none were run)"
        )
    notes.append(
        f"the strongest simple baseline on these users was {strongest} ({metric} "
        f"{float(baselines[strongest][metric].mean()):.4f}; "
        + ", ".join(f"{n} {float(f[metric].mean()):.4f}" for n, f in baselines.items())
        + ")"
    )
    result = {
        **decision.to_dict(),
        "metric": metric,
        "strongest_baseline": strongest,
        "backtest": backtested,
        "champion_before": champion_version,
        "notes": notes,
    }
    layout.gate.write_text(json.dumps(result, indent=2, default=str))
    registry.log_gate(settings, state.mlflow_run_id, result)
    if not decision.passed:
        log.warning("quality gate refused the challenger: %s", "; ".join(decision.reasons))
    return state.record(layout, "gate", result)


# ---------------------------------------------------------------- stage 5: refit on everything and register


def register(settings: Settings, run_key: str, step: Step = _noop) -> dict[str, Any]:
    """Refit the policy's parts on all data, export it, register it, promote if the gate passed."""
    layout, state = RunState.open(settings, run_key)
    params = state.train_params
    decision = state.stages.get("gate")
    if decision is None:
        raise BadInput(f"run {run_key} has not been through the gate yet")
    events = load_events(settings)
    catalog = load_catalog(settings)
    final = layout.final
    final.data.mkdir(parents=True, exist_ok=True)
    step("tune on the newest validation period")
    tuned = _tune(events, catalog, params, final)
    write_signals(events, final, _policy_items(events, catalog))
    step("ranker training set on all data")
    ranker_info, ranker_frame = ranker_set(settings, events, catalog, params, final, tuned)
    fits = {}
    sequence = tuple(n for n in SEQUENCE if n in params.models)
    for name in (*POLICY_PARTS, *LEARNED, *sequence):
        step(f"refit {name} on all data")
        inputs = FitInputs(settings, params, events, catalog, ranker_frame, tuned)
        fits[name] = fit_and_save(name, inputs, final.model_dir(name))
    step("item features, newest")
    as_of = events["ts"].max() + pd.Timedelta(microseconds=1)
    items = sorted(set(events["item_id"]) | (set(catalog["item_id"]) if catalog is not None else set()))
    feature_snapshot(settings, [], items, as_of, final)
    meta = {
        "run_key": run_key,
        "mlflow_run_id": state.mlflow_run_id,
        "trained_through": events["ts"].max().isoformat(),
        "events": len(events),
        "params": state.params,
        "gate": {"passed": decision["passed"], "reasons": decision["reasons"]},
    }
    policy = load_policy(final, meta)
    step("export policy")
    for name in (*LEARNED, *sequence):  # the learned parts' artifacts, next to the policy's own state
        shutil.copytree(final.model_dir(name), final.policy / name, dirs_exist_ok=True)
    policy.export(final.policy)
    step("register in MLflow")
    metric = decision["metric"].replace("@", "_at_")  # MLflow tag names allow no "@"
    comparisons = decision.get("comparisons", {})
    tags = {
        "aisle.run_key": run_key,
        "trained_through": meta["trained_through"],
        "gate.passed": str(decision["passed"]),
        **registry.reason_tags(params.reason),
        f"{metric}.challenger": f"{comparisons.get('popularity', {}).get('challenger', float('nan')):.4f}",
        f"{metric}.popularity": f"{comparisons.get('popularity', {}).get('popularity', float('nan')):.4f}",
        "gate.strongest_baseline": str(decision.get("strongest_baseline")),
    }
    version = registry.register_policy(settings, state.mlflow_run_id, final.policy, tags)
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
        "policy_dir": str(final.policy),
    }
    return state.record(layout, "register", summary)


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
        folds: list[str] = []
        if params.backtest > 1:
            from models.training.backtest import earlier_folds

            folds = earlier_folds(settings, params, step)
        step(GATE_STAGE)
        summary["gate"] = gate(settings, run_key, folds=folds)
        step(REGISTER_STAGE)
        summary["register"] = register(settings, run_key)
    elif register_model:
        summary["register"] = {"skipped": "the registered policy needs two_tower and wide_deep"}
    summary["seconds"] = round(time.perf_counter() - started, 3)
    return summary


def stage_names(params: TrainParams, register_model: bool = True) -> list[str]:
    if not register_model and params.backtest > 1:
        return [f"fold {number}/{params.backtest}" for number in range(1, params.backtest + 1)]
    names = [PREPARE_STAGE, *(f"train {n}" for n in params.fitted()), EVALUATE_STAGE]
    if register_model and params.hybrid:
        names += [f"fold {number}/{params.backtest}" for number in range(2, params.backtest + 1)]
        names += [GATE_STAGE, REGISTER_STAGE]
    return names
