"""Rolling backtests: the evaluation at several cut-offs (`aisle evaluate --backtest N`), and the
earlier folds the gate also checks (`aisle train --backtest N`).

Each fold is a whole evaluation run of its own (``train_all`` without registering) whose test period
ends where the next later fold's begins (``models.splits.backtest_cuts``); it tunes and fits on its own
past only. The gate, given the run keys of the earlier folds, holds the policy of each fold against the
strongest simple baseline of that fold, with the same paired-interval rule as on the run's own test
period, so a policy that only wins on the newest period is not promoted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from aisle.core.settings import Settings
from models.gate import GateDecision, quality_gate
from models.splits import backtest_cuts
from models.training.layout import RunState
from models.training.params import HYBRID, TrainParams
from models.training.scoring import read_catalog, read_split, simple_baselines

Step = Callable[[str], None]


def _noop(_name: str) -> None:
    return None


def _fold_runs(
    settings: Settings, params: TrainParams, step: Step, skip_newest: bool
) -> list[tuple[int, pd.Timestamp, pd.Timestamp, dict[str, Any]]]:
    from models.data import load_events
    from models.training.stages import train_all

    cuts = backtest_cuts(load_events(settings), params.spec, params.backtest)
    runs = []
    for number, (cut, end) in enumerate(cuts, start=1):
        if skip_newest and number == 1:
            continue  # the run's own test period
        step(f"fold {number}/{len(cuts)}: test {cut:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}")
        fold = replace(
            params, test_start=cut.isoformat(), test_end=end.isoformat(), holdout_days=None, backtest=1
        )
        runs.append((number, cut, end, train_all(settings, fold, register_model=False)))
    return runs


def backtest(settings: Settings, params: TrainParams, step: Step = _noop) -> dict[str, Any]:
    """The evaluation repeated at ``params.backtest`` cut-offs rolling back in time: every fold's NDCG@k
    per model and segment, and their mean over the folds."""
    started = time.perf_counter()
    key = f"ndcg@{params.k}"
    folds = [
        {
            "fold": number,
            "test_start": cut.isoformat(),
            "test_end": end.isoformat(),
            "run_key": summary["run_key"],
            "test_users": summary["evaluate"]["test_users"],
            key: summary["evaluate"][key],
        }
        for number, cut, end, summary in _fold_runs(settings, params, step, skip_newest=False)
    ]
    names = sorted({name for fold in folds for name in fold[key]})
    mean = {name: round(float(np.mean([f[key][name] for f in folds if name in f[key]])), 4) for name in names}
    return {
        "folds": folds,
        "folds_run": len(folds),
        "folds_asked": params.backtest,
        f"mean_{key}": mean,
        "seconds": round(time.perf_counter() - started, 3),
    }


def earlier_folds(settings: Settings, params: TrainParams, step: Step = _noop) -> list[str]:
    """Run keys of the ``params.backtest - 1`` folds before the run's own test period, each evaluated
    with the policy, for :func:`gate_folds`."""
    return [summary["run_key"] for *_, summary in _fold_runs(settings, params, step, skip_newest=True)]


def gate_folds(settings: Settings, folds: Sequence[str], decision: GateDecision, metric: str) -> list[Any]:
    """Hold each fold's policy against that fold's strongest simple baseline; a fold where it is worse
    beyond the paired interval refuses ``decision`` (its reason and comparison are added, the
    comparison named ``<baseline>@fold<N>``). Returns one line per fold."""
    lines = []
    for number, run_key in enumerate(folds, start=2):
        layout, state = RunState.open(settings, run_key)
        params = state.train_params
        split = read_split(layout, params, state.cutoff)
        baselines, strongest = simple_baselines(layout, split, params, read_catalog(layout), metric)
        name = f"{strongest}@fold{number}"
        challenger = pd.read_parquet(layout.per_user(HYBRID))
        fold = quality_gate(
            challenger,
            {name: baselines[strongest]},
            {},
            metric=metric,
            n_boot=params.n_boot,
            seed=params.seed,
        )
        decision.comparisons.update(fold.comparisons)
        if not fold.passed:
            decision.passed = False
            decision.reasons.extend(f"fold {number} (test from {state.cutoff}): {r}" for r in fold.reasons)
        lines.append(
            {"fold": number, "run_key": run_key, "test_start": state.cutoff, "strongest_baseline": strongest,
             "passed": fold.passed, **fold.comparisons.get(name, {})}
        )  # fmt: skip
    return lines
