"""``AisleValue``: one named number per series, logged into an Evidently snapshot so dashboards chart it.

Evidently 0.7.23's own ranking metrics are not used, on purpose (measured, see docs/monitoring.md):
``NDCG`` and ``MRR`` are off by one rank (their row ``k`` holds the value @k-1), every top-K metric is a
table whose tests check the first row (@1) and whose dashboard line plots the last row, ``PrecisionTopK``
divides by the list's length rather than ``k``, and its popularity and novelty use other definitions
than the offline evaluation. So quality is computed with ``models.evaluation`` (``monitoring.quality``)
and each value is logged here: the snapshot holds it with ``name`` and ``series`` as labels (which is
what a dashboard panel selects on), and a test on it shows pass/fail in the UI.

Importing this module imports Evidently (telemetry off); only report code does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from monitoring.evidently_env import evidently

evidently()

from evidently import Dataset  # noqa: E402 - after telemetry is switched off
from evidently.core.metric_types import SingleValueCalculation, SingleValueMetric  # noqa: E402

METRIC_TYPE = "evidently:metric_v2:AisleValue"


class AisleValue(SingleValueMetric):
    """The value of ``name`` for ``series`` in a frame with columns name, series, value."""

    name: str
    series: str = "all"


class AisleValueCalculation(SingleValueCalculation[AisleValue]):
    def calculate(self, context: Any, current_data: Dataset, reference_data: Dataset | None) -> Any:
        def pick(data: Dataset) -> float:
            frame = data.as_dataframe()
            hit = frame.loc[
                (frame["name"] == self.metric.name) & (frame["series"] == self.metric.series), "value"
            ]
            return float(hit.iloc[0]) if len(hit) else float("nan")

        current = self.result(pick(current_data))
        return current, None if reference_data is None else self.result(pick(reference_data))

    def display_name(self) -> str:
        return f"{self.metric.name} [{self.metric.series}]"


def values_frame(values: Mapping[tuple[str, str], float]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"name": n, "series": s, "value": float(v)} for (n, s), v in values.items()],
        columns=["name", "series", "value"],
    )


def values_dataset(values: Mapping[tuple[str, str], float]) -> Any:
    ev = evidently()
    definition = ev.DataDefinition(numerical_columns=["value"], categorical_columns=["name", "series"])
    return ev.Dataset.from_pandas(values_frame(values), data_definition=definition)


def values_report(
    values: Mapping[tuple[str, str], float], tests: Mapping[tuple[str, str], Sequence[Any]] | None = None
) -> Any:
    """A Report logging every ``(name, series) → value``; ``tests`` attach Evidently tests to some."""
    ev = evidently()
    tests = tests or {}
    metrics = [AisleValue(name=n, series=s, tests=list(tests.get((n, s), [])) or None) for n, s in values]
    return ev.Report(metrics)
