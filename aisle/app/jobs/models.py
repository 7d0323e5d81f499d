"""Jobs: train, evaluate and register the policy; batch recommendations; the registry's aliases.

``train`` runs the whole training run in one process (`aisle train`, the demo's fallback); the stage
jobs (``prepare`` → ``fit`` per model → ``evaluate_run`` → ``gate`` → ``register``) are what the
`train_models` DAG runs as separate tasks over one run directory.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aisle.app.jobs import Step, no_step, parse_params
from aisle.core.errors import BadInput
from aisle.core.settings import Settings
from models.training.params import TrainParams  # light: DAG files take the trigger form's defaults from it


def train_params(params: Any) -> Any:
    """The run's parameters (``models.training.params.TrainParams``) from a mapping or the dataclass."""
    if isinstance(params, TrainParams):
        return params
    return TrainParams.from_dict(dict(params or {}))


def train_stages(params: Any, register_model: bool = True) -> list[str]:
    """The progress stages of ``train`` / ``evaluate``."""
    from models.training.stages import stage_names

    return stage_names(train_params(params), register_model=register_model)


def train(settings: Settings, params: Any = None, *, progress: Step | None = None) -> dict[str, Any]:
    """Split → fit every model → compare → gate → refit on all data → register (`aisle train`)."""
    from models.training.stages import train_all

    return train_all(settings, train_params(params), step=progress or no_step)


def evaluate(settings: Settings, params: Any = None, *, progress: Step | None = None) -> dict[str, Any]:
    """The same split, fits and comparison as ``train``; registers nothing (`aisle evaluate`). With
    ``backtest`` > 1, the evaluation at that many cut-offs rolling back in time."""
    from models.training.backtest import backtest
    from models.training.stages import train_all

    p = train_params(params)
    if p.backtest > 1:
        return backtest(settings, p, step=progress or no_step)
    return train_all(settings, p, step=progress or no_step, register_model=False)


def prepare(settings: Settings, params: Any = None) -> dict[str, Any]:
    """DAG stage: split the lake in time and write the run's data; returns the summary with ``run_key``."""
    from models.training.stages import prepare as prepare_run

    return prepare_run(settings, train_params(params))


def latest_run(settings: Settings) -> dict[str, Any]:
    """The newest training run on disk: its key, directory, manifest and comparison table."""
    from models.training.layout import RunLayout

    layout = RunLayout.latest(settings)
    return {
        "run_key": layout.run_key,
        "dir": layout.root,
        "state": layout.state,
        "comparison": layout.comparison,
    }


def models_to_fit(settings: Settings, params: Any = None) -> list[str]:
    """The models a run with ``params`` fits (those asked for plus the policy's own parts)."""
    return list(train_params(params).fitted())


@dataclass(frozen=True)
class RunParams:
    run_key: str = ""
    model: str | None = None

    def __post_init__(self) -> None:
        if not self.run_key:
            raise BadInput("run_key is required")


def fit(settings: Settings, params: Any = None) -> dict[str, Any]:
    """DAG stage: fit one model (``params.model``) of a prepared run."""
    from models.training.stages import train as fit_one

    p = parse_params(RunParams, params)
    if not p.model:
        raise BadInput("model is required")
    return fit_one(settings, p.run_key, p.model)


def evaluate_run(settings: Settings, params: Any = None) -> dict[str, Any]:
    """DAG stage: score every fitted model of a run on its holdout."""
    from models.training.stages import evaluate as evaluate_stage

    return evaluate_stage(settings, parse_params(RunParams, params).run_key)


def backtest_folds(settings: Settings, params: Any = None, *, progress: Step | None = None) -> dict[str, Any]:
    """DAG stage: the run's ``backtest`` − 1 earlier cut-offs, each an evaluation run with the policy, for
    the gate to hold against (``aisle train --backtest N`` runs them in one process); none when the run's
    ``backtest`` is 1 or it trains no policy."""
    from models.training.backtest import earlier_folds
    from models.training.layout import RunState

    run_key = parse_params(RunParams, params).run_key
    _, state = RunState.open(settings, run_key)
    p = state.train_params
    folds = earlier_folds(settings, p, progress or no_step) if p.backtest > 1 and p.hybrid else []
    return {"run_key": run_key, "backtest": p.backtest, "folds": folds}


@dataclass(frozen=True)
class GateParams:
    run_key: str = ""
    #: Run keys of the run's earlier backtest folds (``backtest_folds``); empty: its own test period only.
    folds: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.run_key:
            raise BadInput("run_key is required")


def gate(settings: Settings, params: Any = None) -> dict[str, Any]:
    """DAG stage: the quality gate for the run's policy (and its earlier backtest folds, if given)."""
    from models.training.stages import gate as gate_stage

    p = parse_params(GateParams, params)
    return gate_stage(settings, p.run_key, folds=tuple(p.folds))


def register(settings: Settings, params: Any = None) -> dict[str, Any]:
    """DAG stage: refit on all data, register, promote if the gate passed."""
    from models.training.stages import register as register_stage

    return register_stage(settings, parse_params(RunParams, params).run_key)


@dataclass(frozen=True)
class RecommendParams:
    users: str = ""  # one id per line, or a CSV with a user_id column
    out: str = "recs.csv"
    k: int = 10
    include_seen: bool = False
    version: str | None = None
    alias: str = "champion"

    def __post_init__(self) -> None:
        if not self.users:
            raise BadInput("--users is required: a file with one user id per line or a user_id column")
        if self.k < 1:
            raise BadInput(f"--k must be at least 1 (got {self.k})")


def count_users(params: Any) -> int:
    """How many distinct users a recommend-batch call will score (for its progress bar)."""
    from models.data import read_user_file

    return len(read_user_file(parse_params(RecommendParams, params).users))


def recommend_batch(settings: Settings, params: Any = None, *, progress: Any = None) -> dict[str, Any]:
    """Top-K per user from the registered policy through serving's predict path (the rules file's
    boosts, pins and diversity; never purchased or out-of-stock items), as CSV
    ``user_id,item_id,rank,score``."""
    from models.batch import recommend_batch as run_batch
    from serving.batch import batch_predictor

    p = parse_params(RecommendParams, params)
    started = time.perf_counter()
    summary = run_batch(
        settings,
        p.users,
        p.k,
        Path(p.out),
        include_seen=p.include_seen,
        version=p.version,
        alias=p.alias,
        advance=progress,
        predictor=batch_predictor(settings, p.alias),  # serving's path: rules, so lists equal /recommend
    )
    summary.setdefault("seconds", round(time.perf_counter() - started, 3))
    return summary


def list_models(settings: Settings, params: Any = None) -> dict[str, Any]:
    """Registered versions, newest first, with aliases and the metrics they were gated on."""
    from models import registry

    return {
        "model": registry.REGISTERED_MODEL,
        "champion": registry.alias_version(settings, registry.CHAMPION),
        "challenger": registry.alias_version(settings, registry.CHALLENGER),
        "versions": registry.list_versions(settings),
    }


@dataclass(frozen=True)
class PromoteParams:
    version: str = ""
    reason: str = "manual promotion"


def promote(settings: Settings, params: Any = None) -> dict[str, Any]:
    """Make a version the champion by hand (the reason is kept on the version)."""
    from models import registry

    p = parse_params(PromoteParams, params)
    return registry.promote(settings, p.version, p.reason)


def rollback(settings: Settings, params: Any = None) -> dict[str, Any]:
    """Point champion back at the version that held it before the current one."""
    from models import registry

    return registry.rollback(settings)
