"""Each monitoring report as an MLflow run (experiment ``aisle-monitoring``): its figures as metrics, its
trigger decisions and the retraining reason as tags, the whole JSON summary as an artifact. So "why did
the model retrain on the 19th?" has an answer next to the training runs themselves."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any, Final

from aisle.core.settings import Settings

EXPERIMENT: Final = "aisle-monitoring"
REASON_TAG: Final = "aisle.retrain_reason"


def _metric_name(*parts: str) -> str:
    """MLflow metric names allow letters, digits, ``_ - . /`` and spaces."""
    text = ".".join(parts)
    return "".join(ch if ch.isalnum() or ch in "_-./ " else "_" for ch in text)[:250]


def flat_metrics(summary: Mapping[str, Any]) -> Iterator[tuple[str, float]]:
    for concern, d in (summary.get("drift") or {}).items():
        if d and "drift_share" in d:
            yield _metric_name("drift", concern, "share"), float(d["drift_share"])
    quality = summary.get("quality") or {}
    for series, stats in ((quality.get("current") or {}).get("series") or {}).items():
        for stat, value in stats.items():
            yield _metric_name("quality", series, stat), float(value)
    lake = summary.get("lake") or {}
    if lake.get("rate") is not None:
        yield "lake.quarantine_rate", float(lake["rate"])
    guard = summary.get("guardrails") or {}
    for name in ("latency_p99_ms", "degraded_share"):
        if guard.get(name) is not None:
            yield _metric_name("guardrail", name), float(guard[name])


def log_report(settings: Settings, summary: Mapping[str, Any], reason: str | None) -> str:
    """Log the report; returns the MLflow run id."""
    import mlflow

    from models import registry

    as_of = summary["windows"]["as_of"]
    with registry.start_run(settings, f"monitor {as_of}", experiment=EXPERIMENT) as run:
        metrics = {k: v for k, v in flat_metrics(summary) if not math.isnan(v)}
        if metrics:
            mlflow.log_metrics(metrics)
        decisions = summary.get("triggers", {}).get("decisions", [])
        mlflow.set_tags(
            {
                "aisle.kind": "monitor",
                "aisle.as_of": as_of,
                "aisle.causes": ", ".join(f"{d['cause']}={d['action']}" for d in decisions) or "none",
                REASON_TAG: (reason or "")[:5000],
            }
        )
        mlflow.log_dict(dict(summary), "monitor_report.json")
        return str(run.info.run_id)


def tag_run(settings: Settings, run_id: str, tags: Mapping[str, str]) -> None:
    from models import registry

    client = registry.client(settings)
    for key, value in tags.items():
        client.set_tag(run_id, key, str(value)[:5000])
