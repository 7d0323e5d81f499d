"""Train, evaluate, gate and register the recommendation models whenever the features change.

Scheduled on the `aisle_features` Asset (published by `build_features`). One task prepares the temporal
split and the ranker's point-in-time training set; the models then train as parallel mapped tasks;
evaluation compares every model on the holdout; with `backtest` N > 1, `backtest_folds` evaluates the
policy at the N-1 earlier cut-offs too (as `aisle train --backtest N` does); the gate decides whether
the new hybrid policy may become `champion` (held against each fold's strongest simple baseline too);
`register` refits the policy on all data and registers it in MLflow (alias `challenger`, and
`champion` if the gate passed); `publish_champion` then publishes the `aisle_champion`
Asset (extra: the version), which `deploy_service` is scheduled on; it is skipped when nothing was
promoted. The work lives in `models.training`; the trigger form's defaults are
`models.training.params.TrainParams`.
Triggered with a `reason` in its conf (e.g. by the monitoring job), the reason is kept in MLflow.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import Asset, dag, task

from aisle.app.jobs import models, tasks
from aisle.core.assets import CHAMPION_ASSET, FEATURES_ASSET

FEATURES = Asset(name=FEATURES_ASSET[0], uri=FEATURES_ASSET[1])
CHAMPION = Asset(name=CHAMPION_ASSET[0], uri=CHAMPION_ASSET[1])
ALL_MODELS = list(models.TrainParams().models)


@dag(
    dag_id="train_models",
    schedule=[FEATURES],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["aisle", "models"],
    default_args=tasks.default_args(retries=1, first_delay_s=60),
    params=tasks.dag_params(
        models.TrainParams,
        {
            "models": (
                "Models to train (the registered hybrid needs two_tower and wide_deep)",
                {"items": {"type": "string", "enum": ALL_MODELS}, "minItems": 1},
            ),
            "epochs": ("Epochs (two-tower, ranker)", {"minimum": 1, "maximum": 100}),
            "embedding_dim": ("Two-tower embedding size", {"minimum": 4, "maximum": 512}),
            "learning_rate": ("Two-tower learning rate", {"exclusiveMinimum": 0, "exclusiveMaximum": 10}),
            "holdout_days": ("Last days held out for evaluation", {"minimum": 1}),
            "backtest": (
                "Cut-offs the gate checks: with N > 1 it also holds the policy against the strongest "
                "simple baseline of each of the N-1 earlier cut-offs (each tuned, fitted and evaluated "
                "on its own past: about N times the training time); 1 = the run's own test period only",
                {"minimum": 1},
            ),
            "seed": "Seed for sampling and model initialisation",
        },
    ),
    doc_md=__doc__,
)
def train_models() -> None:
    @task
    def prepare(params: dict[str, Any] | None = None) -> str:
        # the run's reason (asset event, schedule, manual, trigger) goes into MLflow with the params
        chosen = {**tasks.job_params(params, models.TrainParams), "reason": tasks.current_reason()}
        return str(tasks.run_job(models.prepare, chosen, name="models.prepare")["run_key"])

    @task
    def models_to_fit(params: dict[str, Any] | None = None) -> list[str]:
        from aisle.core.settings import get_settings

        return models.models_to_fit(get_settings(), tasks.job_params(params, models.TrainParams))

    @task
    def train(run_key: str, name: str) -> dict[str, Any]:
        return tasks.run_job(models.fit, {"run_key": run_key, "model": name}, name=f"models.fit {name}")

    @task
    def evaluate(run_key: str, trained: list[dict[str, Any]]) -> dict[str, Any]:
        return tasks.run_job(models.evaluate_run, {"run_key": run_key}, name="models.evaluate")

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def has_policy(run_key: str, evaluation: dict[str, Any]) -> bool:
        return "hybrid" in evaluation["models"]

    @task
    def backtest_folds(run_key: str, _go: bool) -> list[str]:
        """The earlier cut-offs the gate also checks (the run's `backtest` param; none when it is 1)."""
        done = tasks.run_job(models.backtest_folds, {"run_key": run_key}, name="models.backtest_folds")
        return list(done["folds"])

    @task
    def gate(run_key: str, folds: list[str]) -> dict[str, Any]:
        return tasks.run_job(models.gate, {"run_key": run_key, "folds": folds}, name="models.gate")

    @task
    def register(run_key: str, decision: dict[str, Any]) -> dict[str, Any]:
        return tasks.run_job(models.register, {"run_key": run_key}, name="models.register")

    @task(outlets=[CHAMPION])
    def publish_champion(registered: dict[str, Any]) -> dict[str, Any]:
        """The hook for deployment: an `aisle_champion` event only when a new champion was promoted."""
        from airflow.sdk.exceptions import AirflowSkipException

        if not registered.get("promoted"):
            raise AirflowSkipException(f"version {registered.get('version')} was not promoted; no event")
        facts = {"version": registered["version"], "dag_run_id": registered.get("reason", {}).get("run_id")}
        tasks.set_outlet_extra(CHAMPION, facts)
        return facts

    run_key = prepare()
    trained = train.partial(run_key=run_key).expand(name=models_to_fit())
    evaluation = evaluate(run_key, trained)  # type: ignore[arg-type]
    go = has_policy(run_key, evaluation)  # type: ignore[arg-type]
    folds = backtest_folds(run_key, go)  # type: ignore[arg-type]
    publish_champion(register(run_key, gate(run_key, folds)))  # type: ignore[arg-type]


train_models()
