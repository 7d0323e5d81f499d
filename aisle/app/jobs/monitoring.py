"""Jobs: monitoring reports, their retraining triggers, the exposures collector and the Evidently UI.

``report`` is what `aisle monitor report` and the `monitor` DAG run: the reports of the last window(s)
into the Evidently workspace, the trigger decisions with their cool-down, and — when a cause fires — the
`train_models` DAG started with the reason in its conf, recorded in MLflow and in the report's JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aisle.app.jobs import Step, no_step, parse_params
from aisle.core.errors import BadInput, ServiceUnavailable
from aisle.core.settings import Settings, aisle_child_env, ensure_home

#: Progress stages of ``report`` for one window (back-filled days repeat them).
REPORT_STAGES = ("events", "features", "exposures", "quality", "lake", "dashboards", "triggers")
TRAIN_DAG = "train_models"


@dataclass(frozen=True)
class ReportParams:
    window: str = "1d"
    reference: str = "7d"
    at: str | None = None  # end of the current window; default: the end of the lake's newest day
    backfill: int = 1  # reports for this many consecutive windows ending at ``at`` (the dashboards' history)
    retrain: bool = True  # start train_models when a cause fires (else decisions are recorded only)
    train_conf: dict[str, Any] = field(default_factory=dict)  # train_models params for a triggered run

    def __post_init__(self) -> None:
        if not 1 <= self.backfill <= 366:
            raise BadInput(f"--backfill must be between 1 and 366 reports (got {self.backfill})")
        if not isinstance(self.train_conf, dict):
            raise BadInput("train_conf must be a JSON object of train_models params")


def stages(params: Any = None) -> list[str]:
    p = parse_params(ReportParams, params)
    per_day = list(REPORT_STAGES[:-1])
    return [
        f"{s} ({i + 1}/{p.backfill})" if p.backfill > 1 else s for i in range(p.backfill) for s in per_day
    ] + ["triggers"]


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def report(settings: Settings, params: Any = None, *, progress: Step | None = None) -> dict[str, Any]:
    """Monitoring reports for the last ``backfill`` windows, then the triggers of the newest one."""
    from monitoring import triggers
    from monitoring.report import Reporter, latest_as_of
    from monitoring.tracking import log_report
    from monitoring.windows import make_windows, parse_time

    p = parse_params(ReportParams, params)
    step = progress or no_step
    ensure_home(settings)
    as_of = parse_time(p.at) if p.at else latest_as_of(settings)
    newest = make_windows(as_of, p.window, p.reference)
    reporter = Reporter(settings)
    earlier = []
    for back in range(p.backfill - 1, 0, -1):
        w = make_windows(as_of - back * newest.window, newest.window, newest.reference)
        day = reporter.run(w, _suffixed(step, f" ({p.backfill - back}/{p.backfill})"))
        earlier.append({"as_of": w.as_of.isoformat(), "drift_shares": drift_shares(day)})
    suffix = f" ({p.backfill}/{p.backfill})" if p.backfill > 1 else ""
    summary = reporter.run(newest, _suffixed(step, suffix), lake_now=datetime.now(UTC))
    step("triggers")
    causes = triggers.detect(summary)
    decisions = triggers.decide(
        causes,
        newest.as_of,
        timedelta(hours=settings.monitor_cooldown_hours),
        settings.paths.monitoring / "triggers.json",
        triggers.broken_data(summary),
    )
    reason = triggers.retrain_reason(decisions)
    summary["triggers"] = {"decisions": [d.as_dict() for d in decisions], "reason": reason}
    summary = _jsonable(summary)
    run_id = log_report(settings, summary, reason)
    if p.retrain:
        summary["triggers"]["retrain"] = retrain(
            settings, {"reason": reason, "train_conf": p.train_conf, "mlflow_run_id": run_id}
        )
    else:
        note = "retrain=false: the decision is recorded, nothing was started" if reason else "nothing fired"
        summary["triggers"]["retrain"] = {"started": False, "note": note}
    out = _overview(settings, summary, earlier, run_id)
    path = settings.paths.monitoring / "reports" / f"{newest.as_of:%Y%m%dT%H%M%S}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**out, "details": summary}, indent=1, default=str))
    out["report_file"] = str(path)
    return out


def _suffixed(step: Step, suffix: str) -> Step:
    return lambda name: step(name + suffix)


def drift_shares(summary: dict[str, Any]) -> dict[str, float | None]:
    return {name: d.get("drift_share") for name, d in summary.get("drift", {}).items()}


def _overview(
    settings: Settings, summary: dict[str, Any], earlier: list[dict[str, Any]], run_id: str
) -> dict[str, Any]:
    """The JSON summary line: drift shares, quality metrics, test results, triggers; details on disk."""
    drift = summary.get("drift", {})
    quality = summary.get("quality", {})
    judged = [n for n, d in drift.items() if "drift_share" in d] + (
        ["quality"] if "current" in quality else []
    )
    failed = [{"concern": n, **t} for n, d in drift.items() for t in d.get("failed_tests", [])]
    tests_total = sum(d.get("tests", {}).get("total", 0) for d in drift.values())
    skipped = {n: d["skipped"] for n, d in {**drift, "quality": quality}.items() if d.get("skipped")}
    out: dict[str, Any] = {
        "as_of": summary["windows"]["as_of"],
        "windows": summary["windows"],
        "drift_shares": drift_shares(summary),
        "drift_detected": sorted(n for n, d in drift.items() if d.get("drift_detected")),
        "drifted_columns": {
            n: sorted(c for c, v in d.get("columns", {}).items() if v.get("drifted"))
            for n, d in drift.items()
            if d.get("columns")
        },
        "data_quality_failures": [
            f"{n}: {f['problem']}"
            for n, d in drift.items()
            for f in (d.get("data_quality") or {}).get("failures", [])
        ],
        "quality_metrics": (quality.get("current") or {}).get("series", {}),
        "quality_drops": quality.get("drops", []),
        "offline_vs_online": quality.get("offline_vs_online"),
        "lake": {
            k: summary.get("lake", {}).get(k) for k in ("read", "refused", "rate", "by_channel", "by_reason")
        },
        "guardrails": {
            k: summary["guardrails"].get(k)
            for k in ("responses", "latency_p99_ms", "degraded_share", "breaches")
        },
        "tests": {"total": tests_total, "failed": len(failed), "failed_tests": failed},
        "judged": judged,
        "skipped": skipped,
        "triggers": summary["triggers"],
        "workspace": str(settings.paths.evidently_workspace),
        "mlflow_run_id": run_id,
        "seconds": summary.get("seconds"),
    }
    if earlier:
        out["backfilled"] = earlier
    if not judged:
        out["ok"] = False
        out["error"] = "nothing could be judged: " + "; ".join(f"{n}: {why}" for n, why in skipped.items())
    return out


# ---------------------------------------------------------------- starting train_models


@dataclass(frozen=True)
class RetrainParams:
    reason: str | None = None  # None: nothing fired, nothing to start
    train_conf: dict[str, Any] = field(default_factory=dict)
    mlflow_run_id: str | None = None  # the monitoring report's run: gets the outcome as a tag


def retrain(settings: Settings, params: Any = None) -> dict[str, Any]:
    """Start train_models for a fired trigger's reason (the `monitor` DAG's last task)."""
    from monitoring.tracking import tag_run

    p = parse_params(RetrainParams, params)
    if not p.reason:
        return {"started": False, "note": "nothing fired"}
    outcome = start_retraining(settings, p.reason, p.train_conf)
    if p.mlflow_run_id:
        tag_run(settings, p.mlflow_run_id, {"aisle.retrain": json.dumps(outcome, default=str)})
    return outcome


def start_retraining(
    settings: Settings, reason: str, train_conf: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Start `train_models` with ``reason`` in its conf: on the running Airflow when there is one (and
    ``AISLE_MONITOR_RETRAIN`` allows it), else in a child ``aisle dags test`` process."""
    from aisle.app.airflow_server import running_url

    conf = dict(train_conf or {})
    mode = settings.monitor_retrain
    if mode == "off":
        return {
            "started": False,
            "how": "off",
            "note": "AISLE_MONITOR_RETRAIN=off: recorded only",
            "conf": {**conf, "reason": reason},
        }
    live = mode in ("auto", "airflow") and running_url(settings) is not None
    if mode == "airflow" and not live:
        raise ServiceUnavailable(
            "AISLE_MONITOR_RETRAIN=airflow, but no Airflow runs for this AISLE_HOME; "
            "start it with `aisle airflow up` (or use auto)"
        )
    if live:
        from aisle.app.jobs import orchestration

        run = orchestration.trigger(settings, {"dag_id": TRAIN_DAG, "conf": conf, "reason": reason})
        return {"started": True, "how": "airflow", **run}
    return _in_process(settings, {**conf, "reason": reason})


def _in_process(settings: Settings, conf: dict[str, Any]) -> dict[str, Any]:
    """`aisle dags test train_models --conf ...` in a child process (its own Airflow state, its own
    memory), waited for; its JSON summary line is the result."""
    started = time.perf_counter()
    log = settings.paths.monitoring / "retrain" / f"{datetime.now(UTC):%Y%m%dT%H%M%S}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "aisle.app.cli", "dags", "test", TRAIN_DAG, "--conf", json.dumps(conf)]
    with log.open("w") as err:
        done = subprocess.run(
            command, env=aisle_child_env(settings), stdout=subprocess.PIPE, stderr=err, text=True, check=False
        )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    result: dict[str, Any] = {}
    if lines:
        try:
            result = json.loads(lines[-1])
        except json.JSONDecodeError:
            result = {}
    return {
        "started": True,
        "how": "in_process",
        "dag_id": TRAIN_DAG,
        "conf": conf,
        "ok": done.returncode == 0,
        "exit_code": done.returncode,
        "run_id": result.get("run_id"),
        "state": result.get("state"),
        "log": str(log),
        "seconds": round(time.perf_counter() - started, 1),
    }


# ---------------------------------------------------------------- exposures and the UI


@dataclass(frozen=True)
class CollectParams:
    max_seconds: float = 60.0
    idle_seconds: float = 5.0
    optional: bool = False  # no broker: say so and return instead of failing (the daily DAG)


def collect(settings: Settings, params: Any = None, *, progress: Any = None) -> dict[str, Any]:
    """Consume the exposures topic into the lake (bounded: stops when idle or after ``max_seconds``)."""
    from ingestion.exposures import collect as collect_exposures

    p = parse_params(CollectParams, params)
    try:
        return collect_exposures(
            settings, max_seconds=p.max_seconds, idle_seconds=p.idle_seconds, progress=progress
        )
    except ServiceUnavailable as exc:
        if not p.optional:
            raise
        return {"skipped": str(exc), "stored": 0}


@dataclass(frozen=True)
class UiParams:
    port: int | None = None
    stop: bool = False


def ui(settings: Settings, params: Any = None) -> dict[str, Any]:
    """Start (or find) the Evidently UI over the workspace, or stop it."""
    from aisle.app.evidently_ui import start_ui, stop_ui

    p = parse_params(UiParams, params)
    if p.stop:
        return stop_ui(settings)
    if p.port is not None and not 0 < p.port < 65536:
        raise BadInput(f"--port must be a TCP port 1-65535 (got {p.port})")
    info = start_ui(settings, p.port)
    info["projects"] = _projects(info["url"])
    return info


def _projects(url: str) -> list[str]:
    import urllib.request

    with urllib.request.urlopen(f"{url}/api/projects", timeout=10) as response:
        return sorted(str(p["name"]) for p in json.loads(response.read()))
