"""Hyper-parameters learned on the validation period, never on the test period.

``tune`` gets a validation split cut from the training events alone (``models.splits.validation``): it
fits each tunable model on the validation split's training part and scores it on the validation users
(NDCG@k, the same full-ranking protocol as the test), under a bounded Optuna search (a seeded TPE
sampler, ``trials`` per model). What it decides, the recent-popularity window, the trending half-life,
the decayed item-kNN's half-life and neighbourhood, the session-kNN's neighbourhood and query length,
and the cold-start list, is then used to fit on the whole training split. Nothing of the test period is
ever passed in, which ``tests/model/test_splits.py`` checks by changing the test period and getting the
same decisions.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

from models.evaluation import Split, per_user_results, subsample_users

log = logging.getLogger(__name__)

#: The lists a shopper without history can get; the one best on the validation period's new users wins.
COLD_CANDIDATES: Final = ("popularity", "recent_popularity", "trending")
#: Validation users scored per trial: enough for a stable mean, cheap enough for a dozen trials.
MAX_VALIDATION_USERS: Final = 3000


@dataclass(frozen=True)
class Space:
    """One tunable parameter: log-uniform floats between bounds (scaled to the data's span in days where
    ``of_span``), or integers."""

    name: str
    low: float
    high: float
    integer: bool = False
    of_span: bool = False


def _factories() -> dict[str, tuple[Callable[..., Any], tuple[Space, ...]]]:
    from models.baselines import (
        DecayedItemKNNRecommender,
        RecentPopularityRecommender,
        SessionKNNRecommender,
        TrendingRecommender,
    )

    return {
        "recent_popularity": (RecentPopularityRecommender, (Space("window_days", 0.05, 1.0, of_span=True),)),
        "trending": (TrendingRecommender, (Space("half_life_days", 0.01, 1.0, of_span=True),)),
        "item_knn_decay": (
            DecayedItemKNNRecommender,
            (Space("half_life_days", 0.02, 2.0, of_span=True), Space("neighbours", 20, 300, integer=True)),
        ),
        "session_knn": (
            SessionKNNRecommender,
            (Space("neighbours", 20, 500, integer=True), Space("recent", 2, 30, integer=True)),
        ),
    }


TUNABLE: Final = ("recent_popularity", "trending", "item_knn_decay", "session_knn")


def _span_days(events: pd.DataFrame) -> float:
    ts = pd.to_datetime(events["ts"], utc=True)
    return max(1.0 / 24.0, (ts.max() - ts.min()).total_seconds() / 86_400.0)


def _score(model: Any, split: Split, catalog: pd.DataFrame | None, k: int) -> float:
    frame = per_user_results({"m": model}, split, [k], catalog)["m"]
    return float(frame[f"ndcg@{k}"].mean()) if len(frame) else 0.0


def tune(
    validation: Split,
    catalog: pd.DataFrame | None,
    names: tuple[str, ...] = TUNABLE,
    k: int = 10,
    trials: int = 12,
    seed: int = 0,
) -> dict[str, Any]:
    """Decide each tunable model's parameters on ``validation``; returns name → {params, ndcg, trials}
    plus ``cold_start`` → {source, ndcg per candidate, users}. JSON-able."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    scored = subsample_users(validation, MAX_VALIDATION_USERS, seed)
    span = _span_days(validation.train)
    factories = _factories()
    decided: dict[str, Any] = {}
    for name in names:
        factory, spaces = factories[name]

        def objective(
            trial: optuna.Trial, factory: Callable[..., Any] = factory, spaces: tuple[Space, ...] = spaces
        ) -> float:
            values: dict[str, Any] = {}
            for space in spaces:
                if space.integer:
                    values[space.name] = trial.suggest_int(
                        space.name, int(space.low), int(space.high), log=True
                    )
                else:
                    scale = span if space.of_span else 1.0
                    values[space.name] = trial.suggest_float(
                        space.name, space.low * scale, space.high * scale, log=True
                    )
            return _score(factory(**values).fit(scored.train, catalog), scored, catalog, k)

        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
        study.optimize(objective, n_trials=trials)
        best = {key: (int(v) if isinstance(v, int) else float(v)) for key, v in study.best_params.items()}
        decided[name] = {
            "params": best,
            "ndcg": round(float(study.best_value), 5),
            "trials": len(study.trials),
        }
        log.info("tuned %s on validation: %s (NDCG@%d %.4f)", name, best, k, study.best_value)
    decided["cold_start"] = choose_cold_start(scored, catalog, decided, k)
    return decided


def tuned_model(name: str, decided: Mapping[str, Any]) -> Any:
    """An unfitted model with the parameters ``tune`` decided (its defaults when it was not tuned)."""
    factory, _ = _factories()[name]
    return factory(**(decided.get(name) or {}).get("params", {}))


def choose_cold_start(
    validation: Split, catalog: pd.DataFrame | None, decided: Mapping[str, Any], k: int
) -> dict[str, Any]:
    """The popularity-type list that ranks the validation period's shoppers without history best (all
    validation shoppers when there are none), with the windows and half-lives just tuned."""
    from models.baselines import PopularityRecommender

    users = validation.without_history if len(validation.without_history) else validation.users
    cold = Split(
        train=validation.train,
        test=validation.test,
        cutoff=validation.cutoff,
        relevance=validation.relevance.loc[validation.relevance["user_id"].isin(users)],
        users=users,
        with_history=np.array([], dtype=object),
        without_history=users,
    )
    scores: dict[str, float] = {}
    for name in COLD_CANDIDATES:
        model = PopularityRecommender() if name == "popularity" else tuned_model(name, decided)
        value = _score(model.fit(validation.train, catalog), cold, catalog, k) if len(users) else math.nan
        scores[name] = round(value, 5)
    best = max(COLD_CANDIDATES, key=lambda n: scores[n] if np.isfinite(scores[n]) else -1.0)
    return {
        "source": best,
        "ndcg": scores,
        "users": len(users),
        "new_users_only": bool(len(validation.without_history)),
    }
