"""Drift and data-quality reports with Evidently: reference window vs current window, one table at a time.

Methods are fixed so a threshold always means the same thing: numeric columns by the Wasserstein
distance normed by the reference's spread, categorical ones by the Jensen-Shannon distance; a column
drifted when its distance is at or above its threshold, and a dataset when at least ``drift_share`` of
its columns drifted (Evidently's own tests decide both, with the thresholds from Settings). Evidently
would otherwise pick p-value tests for small windows, whose thresholds mean the opposite.

A column is judged only with enough values in both windows, and its threshold is never below the
distance that chance alone reaches for windows of that size (``monitoring.noise``), so a small window
does not report noise as drift. Next to drift, each column gets data-quality tests that catch a broken
feature even when its distribution still "looks" close: a column that had spread in the reference but
is constant now, and a share of missing values that moved by more than the tolerance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from aisle.core.settings import Settings
from monitoring.evidently_env import evidently
from monitoring.frames import SLICE_TIME, Columns
from monitoring.noise import sampling_floor, slice_floor

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


@dataclass(frozen=True)
class Plan:
    """What one report compares: drift columns with their thresholds, and the data-quality columns."""

    drift: Columns  # enough values in both windows
    quality: Columns  # values in the reference (a column that vanished now is a quality failure)
    thresholds: dict[str, float]  # effective, per drift column: max(configured, noise floor)
    configured: dict[str, float]
    floors: dict[str, float]
    not_compared: dict[str, str]


def plan(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: Columns,
    thresholds: Thresholds,
    min_values: int,
    slices: pd.Series | None = None,
) -> Plan:
    """Which columns are judged, and at which threshold (see ``monitoring.noise`` for the floor);
    ``slices`` labels the reference's rows by window-long slice (for the day-to-day floor)."""
    drift: list[str] = []
    quality: list[str] = []
    effective: dict[str, float] = {}
    configured: dict[str, float] = {}
    floors: dict[str, float] = {}
    skipped: dict[str, str] = {}
    for col in columns.all:
        n_ref = int(reference[col].notna().sum()) if col in reference else 0
        n_cur = int(current[col].notna().sum()) if col in current else 0
        if n_ref == 0:
            skipped[col] = "no values in the reference window"
            continue
        quality.append(col)
        if min(n_ref, n_cur) < min_values:
            skipped[col] = (
                f"too few values to judge drift (current {n_cur}, reference {n_ref}; need {min_values})"
            )
            continue
        categorical = col in columns.categorical
        configured[col] = thresholds.per_column.get(col, thresholds.cat if categorical else thresholds.num)
        floor = sampling_floor(reference[col], n_cur, categorical)
        if slices is not None:
            floor = max(floor, slice_floor(reference[col], slices, categorical, max(min_values // 4, 20)))
        floors[col] = round(floor, 4)
        effective[col] = round(max(configured[col], floors[col]), 4)
        drift.append(col)

    def split(names: list[str]) -> Columns:
        return Columns(
            numerical=tuple(c for c in columns.numerical if c in names),
            categorical=tuple(c for c in columns.categorical if c in names),
        )

    return Plan(split(drift), split(quality), effective, configured, floors, skipped)


def drift_report(reference: pd.DataFrame, the_plan: Plan, thresholds: Thresholds) -> Any:
    """The Evidently Report (not yet run): the drift preset with the plan's thresholds, and the
    data-quality tests."""
    ev = evidently()
    from evidently.metrics import MissingValueCount, StdValue
    from evidently.presets import DataDriftPreset
    from evidently.tests import Reference, eq, gt

    metrics: list[Any] = []
    if the_plan.drift.all:
        metrics.append(
            DataDriftPreset(
                columns=list(the_plan.drift.all),
                drift_share=thresholds.drift_share,
                num_method=NUM_METHOD,
                cat_method=CAT_METHOD,
                num_threshold=thresholds.num,
                cat_threshold=thresholds.cat,
                per_column_threshold=dict(the_plan.thresholds),
            )
        )
    for col in the_plan.quality.all:
        metrics.append(
            MissingValueCount(column=col, share_tests=[eq(Reference(absolute=thresholds.missing_tolerance))])
        )
    for col in the_plan.quality.numerical:
        spread = float(reference[col].std(skipna=True) or 0.0)
        if (
            spread > 0
        ):  # "constant": the spread collapsed by six orders of magnitude (float noise is not spread)
            metrics.append(StdValue(column=col, tests=[gt(spread * COLLAPSED)]))
    return ev.Report(metrics, include_tests=True)


def run_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: Columns,
    thresholds: Thresholds,
    *,
    min_values: int = 1,
    slice_length: Any = None,
    timestamp: Any = None,
    tags: list[str] | None = None,
    metadata: dict[str, str] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Run the report and return ``(snapshot, summary)``."""
    ev = evidently()
    slices = None
    if slice_length is not None and SLICE_TIME in reference:
        start = reference[SLICE_TIME].min()
        slices = ((reference[SLICE_TIME] - start) // slice_length).astype("int64")
    the_plan = plan(reference, current, columns, thresholds, min_values, slices)
    used = list(the_plan.quality.all)
    definition = _definition(the_plan.quality)
    snapshot = drift_report(reference, the_plan, thresholds).run(
        ev.Dataset.from_pandas(current[used], data_definition=definition),
        ev.Dataset.from_pandas(reference[used], data_definition=definition),
        timestamp=timestamp,
        tags=tags or [],
        metadata=metadata or {},
    )
    summary = summarize(snapshot)
    for col, info in summary["columns"].items():
        info["configured_threshold"] = the_plan.configured[col]
        info["noise_floor"] = the_plan.floors[col]
    if not the_plan.drift.all:
        summary.update(drift_share=0.0, drifted_columns=0, drift_detected=False)
    if the_plan.not_compared:
        summary["not_compared"] = the_plan.not_compared
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
