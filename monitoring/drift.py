"""Drift and data-quality reports with Evidently: reference window vs current window, one table at a time.

Methods are fixed so a threshold always means the same thing: numeric columns by the Wasserstein
distance normed by the reference's spread, categorical ones by the Jensen-Shannon distance; a column
drifted when its distance is at or above its threshold, and a dataset when at least ``drift_share`` of
its columns drifted (Evidently's own tests decide both, with the thresholds from Settings). Evidently
would otherwise pick p-value tests for small windows, whose thresholds mean the opposite.

Next to drift, each column gets data-quality tests that catch a broken feature even when its
distribution still "looks" close: a column that had spread in the reference but is constant now, and a
share of missing values that moved by more than the tolerance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from aisle.core.settings import Settings
from monitoring.evidently_env import evidently
from monitoring.frames import Columns

NUM_METHOD = "wasserstein"
CAT_METHOD = "jensenshannon"
_TYPE = "evidently:metric_v2:"
COLLAPSED = 1e-6


@dataclass(frozen=True)
class Thresholds:
    drift_share: float
    num: float
    cat: float
    per_column: Mapping[str, float]
    missing_tolerance: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        return cls(
            drift_share=settings.monitor_drift_share,
            num=settings.monitor_num_threshold,
            cat=settings.monitor_cat_threshold,
            per_column=settings.column_thresholds,
            missing_tolerance=settings.monitor_missing_tolerance,
        )


def _definition(columns: Columns) -> Any:
    ev = evidently()
    return ev.DataDefinition(
        numerical_columns=list(columns.numerical), categorical_columns=list(columns.categorical)
    )


def _comparable(frame: pd.DataFrame, columns: Columns) -> Columns:
    """Columns with at least one value in the frame (an all-null column has no distribution)."""
    keep = [c for c in columns.all if c in frame and frame[c].notna().any()]
    return Columns(
        numerical=tuple(c for c in columns.numerical if c in keep),
        categorical=tuple(c for c in columns.categorical if c in keep),
    )


def drift_report(
    reference: pd.DataFrame, current: pd.DataFrame, columns: Columns, thresholds: Thresholds
) -> tuple[Any, Columns]:
    """The Evidently Report (not yet run) for these columns, and the columns it compares."""
    ev = evidently()
    from evidently.metrics import MissingValueCount, StdValue
    from evidently.presets import DataDriftPreset
    from evidently.tests import Reference, eq, gt

    usable = _comparable(reference, columns)
    per_column = {c: thresholds.per_column[c] for c in usable.all if c in thresholds.per_column}
    metrics: list[Any] = [
        DataDriftPreset(
            columns=list(usable.all),
            drift_share=thresholds.drift_share,
            num_method=NUM_METHOD,
            cat_method=CAT_METHOD,
            num_threshold=thresholds.num,
            cat_threshold=thresholds.cat,
            per_column_threshold=per_column or None,
        )
    ]
    for col in usable.all:
        metrics.append(
            MissingValueCount(column=col, share_tests=[eq(Reference(absolute=thresholds.missing_tolerance))])
        )
    for col in usable.numerical:
        spread = float(reference[col].std(skipna=True) or 0.0)
        if (
            spread > 0
        ):  # "constant" = a spread collapsed by six orders of magnitude (float noise is not spread)
            metrics.append(StdValue(column=col, tests=[gt(spread * COLLAPSED)]))
    return ev.Report(metrics, include_tests=True), usable


def run_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: Columns,
    thresholds: Thresholds,
    *,
    timestamp: Any = None,
    tags: list[str] | None = None,
    metadata: dict[str, str] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Run the report and return ``(snapshot, summary)``."""
    ev = evidently()
    report, usable = drift_report(reference, current, columns, thresholds)
    definition = _definition(usable)
    snapshot = report.run(
        ev.Dataset.from_pandas(current[list(usable.all)], data_definition=definition),
        ev.Dataset.from_pandas(reference[list(usable.all)], data_definition=definition),
        timestamp=timestamp,
        tags=tags or [],
        metadata=metadata or {},
    )
    summary = summarize(snapshot)
    skipped = sorted(set(columns.all) - set(usable.all))
    if skipped:
        summary["not_compared"] = skipped
    return snapshot, summary


def _status(test: Mapping[str, Any]) -> str:
    status = test["status"]
    return str(getattr(status, "value", status))


def summarize(snapshot: Any) -> dict[str, Any]:
    """Drift share, per-column scores and every failed test, read back from the snapshot itself."""
    d = snapshot.dict()
    status = {t["metric_config"]["metric_id"]: _status(t) for t in d["tests"]}
    out: dict[str, Any] = {"columns": {}, "failed_tests": []}
    quality: list[dict[str, Any]] = []
    for m in d["metrics"]:
        config, kind = m["config"], m["config"]["type"].removeprefix(_TYPE)
        if kind == "DriftedColumnsCount":
            out["drift_share"] = round(float(m["value"]["share"]), 4)
            out["drifted_columns"] = int(m["value"]["count"])
            out["drift_detected"] = status.get(m["id"]) == "FAIL"
        elif kind == "ValueDrift":
            out["columns"][config["column"]] = {
                "method": config["method"],
                "threshold": float(config["threshold"]),
                "score": round(float(m["value"]), 4),
                "drifted": status.get(m["id"]) == "FAIL",
            }
        elif kind in ("StdValue", "MissingValueCount") and status.get(m["id"]) == "FAIL":
            column = config["column"]
            if kind == "StdValue":
                problem = f"{column} is constant in the current window (it varied in the reference)"
            else:
                share = float(m["value"]["share"])
                problem = f"{column}: share of missing values moved to {share:.3f}"
            quality.append({"check": kind, "column": column, "problem": problem})
    out["data_quality"] = {"passed": not quality, "failures": quality}
    for t in d["tests"]:
        if _status(t) in ("FAIL", "ERROR"):
            out["failed_tests"].append(
                {"name": t["name"], "status": _status(t), "description": t["description"]}
            )
    out["tests"] = {"total": len(d["tests"]), "failed": len(out["failed_tests"])}
    return out
