"""Every DAG's trigger form: typed Params whose defaults are the jobs' own, a `reason`, and bounds that
refuse bad values before a run exists."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from aisle.app.jobs import features, ingest, monitoring, shop
from aisle.app.jobs.models import TrainParams

# DAG -> the params dataclasses its form is built from, and the defaults it overrides on purpose
SOURCES: dict[str, tuple[tuple[type, ...], dict[str, Any]]] = {
    "generate_shop": ((shop.GenerateParams,), {}),
    "ingest_events": ((ingest.BatchParams, ingest.StreamParams), {"max_seconds": 30, "idle_seconds": 5}),
    "build_features": ((features.ComputeParams,), {}),
    "train_models": ((TrainParams,), {}),
    "monitor": ((monitoring.ReportParams,), {}),
}


def _default(cls: type, name: str) -> Any:
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    value = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
    return list(value) if isinstance(value, tuple) else value


@pytest.mark.parametrize("dag_id", sorted(SOURCES))
def test_param_defaults_come_from_the_jobs(dagbag: Any, dag_id: str) -> None:
    params = dagbag.dags[dag_id].params
    classes, overrides = SOURCES[dag_id]
    compared = 0
    for cls in classes:
        for name in {f.name for f in dataclasses.fields(cls)} & set(params.keys()):
            expected = overrides.get(name, _default(cls, name))
            assert params[name] == expected, f"{dag_id}.{name}: {params[name]!r} != {expected!r}"
            compared += 1
    assert compared >= 1
    assert params["reason"] == ""
    for name in params:
        assert params.get_param(name).description, f"{dag_id}.{name} has no description"


@pytest.mark.parametrize(
    ("dag_id", "conf", "message"),
    [
        ("generate_shop", {"users": 0}, "less than the minimum of 1"),
        ("generate_shop", {"format": "xlsx"}, "is not one of"),
        ("train_models", {"models": ["gpt"]}, "is not one of"),
        ("train_models", {"epochs": "many"}, "is not of type 'integer'"),
        ("train_models", {"backtest": 0}, "less than the minimum of 1"),
        ("ingest_events", {"stream": "yes"}, "is not of type 'boolean'"),
        ("monitor", {"window": "yesterday"}, "does not match"),
        ("generate_shop", {"shift": "weather"}, "is not one of"),
    ],
)
def test_bad_values_are_refused_by_the_params(
    dagbag: Any, dag_id: str, conf: dict[str, Any], message: str
) -> None:
    from airflow.sdk.definitions.param import ParamsDict
    from airflow.sdk.exceptions import ParamValidationError

    params = ParamsDict(dagbag.dags[dag_id].params)
    with pytest.raises(ParamValidationError, match=message):
        params.update(conf)  # a Param checks a new value when it is set
        params.validate()
