"""Train, evaluate, gate and register the recommendation models whenever the features change.

Scheduled on the `aisle_features` Asset (published by `build_features`). One task prepares the temporal
split and the ranker's point-in-time training set; the models then train as parallel mapped tasks;
evaluation compares every model on the holdout; the gate decides whether the new hybrid policy may
become `champion`; the last task refits the policy on all data and registers it in MLflow (alias
`challenger`, and `champion` if the gate passed). The work lives in `models.pipeline`.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import Asset, Param, dag, task

from aisle.core.assets import FEATURES_ASSET

FEATURES = Asset(name=FEATURES_ASSET[0], uri=FEATURES_ASSET[1])
ALL_MODELS = ["popularity", "trending", "cooccurrence", "item_knn", "als", "two_tower", "wide_deep"]


@dag(
    dag_id="train_models",
    schedule=[FEATURES],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["aisle", "models"],
    default_args={"retries": 1, "retry_delay": pendulum.duration(minutes=1)},
    params={
        "models": Param(
            ALL_MODELS,
            type="array",
            items={"type": "string", "enum": ALL_MODELS},
            description="Models to train (the registered hybrid needs two_tower and wide_deep)",
        ),
        "epochs": Param(5, type="integer", minimum=1, maximum=100, description="Epochs (two-tower, ranker)"),
        "embedding_dim": Param(
            32, type="integer", minimum=4, maximum=512, description="Two-tower embedding size"
        ),
        "learning_rate": Param(
            0.05, type="number", exclusiveMinimum=0, description="Two-tower learning rate"
        ),
        "holdout_days": Param(7, type="integer", minimum=1, description="Last days held out for evaluation"),
    },
    doc_md=__doc__,
)
def train_models() -> None:
    @task
    def prepare(params: dict[str, Any] | None = None) -> str:
        from aisle.app.jobs import models
        from aisle.core.settings import get_settings

        return str(models.prepare(get_settings(), dict(params or {}))["run_key"])

    @task
    def models_to_fit(params: dict[str, Any] | None = None) -> list[str]:
        from aisle.app.jobs import models
        from aisle.core.settings import get_settings

        return models.models_to_fit(get_settings(), dict(params or {}))

    @task
    def train(run_key: str, name: str) -> dict[str, Any]:
        from aisle.app.jobs import models
        from aisle.core.settings import get_settings

        return models.fit(get_settings(), {"run_key": run_key, "model": name})

    @task
    def evaluate(run_key: str, trained: list[dict[str, Any]]) -> dict[str, Any]:
        from aisle.app.jobs import models
        from aisle.core.settings import get_settings

        return models.evaluate_run(get_settings(), {"run_key": run_key})

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def has_policy(run_key: str, evaluation: dict[str, Any]) -> bool:
        return "hybrid" in evaluation["models"]

    @task
    def gate(run_key: str, _go: bool) -> dict[str, Any]:
        from aisle.app.jobs import models
        from aisle.core.settings import get_settings

        return models.gate(get_settings(), {"run_key": run_key})

    @task
    def register(run_key: str, decision: dict[str, Any]) -> dict[str, Any]:
        from aisle.app.jobs import models
        from aisle.core.settings import get_settings

        return models.register(get_settings(), {"run_key": run_key})

    run_key = prepare()
    trained = train.partial(run_key=run_key).expand(name=models_to_fit())
    evaluation = evaluate(run_key, trained)  # type: ignore[arg-type]
    go = has_policy(run_key, evaluation)  # type: ignore[arg-type]
    register(run_key, gate(run_key, go))  # type: ignore[arg-type]


train_models()
