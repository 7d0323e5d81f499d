"""Jobs: A/B experiments (define, start, stop, inspect, assign), attribution, analysis, simulated traffic.

`aisle experiment …`, `aisle simulate traffic`, the demo and the DAGs call these; the operations
themselves live in ``serving.experiments`` (the service runs them too) and ``monitoring.experiments``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aisle.app.jobs import parse_params
from aisle.core.settings import Settings


@dataclass(frozen=True)
class CreateParams:
    file: str = ""


def create(settings: Settings, params: Any = None) -> dict[str, Any]:
    """Store a YAML definition as a draft (new key: version 1; stopped key: the next version)."""
    from aisle.core.errors import BadInput
    from serving.experiments import api

    p = parse_params(CreateParams, params)
    if not p.file:
        raise BadInput("give the experiment definition file (YAML)")
    return api.create(settings, Path(p.file))


@dataclass(frozen=True)
class KeyParams:
    key: str = ""
    version: int | None = None


def _key(params: Any) -> KeyParams:
    from aisle.core.errors import BadInput

    p = parse_params(KeyParams, params)
    if not p.key:
        raise BadInput("give the experiment key")
    return p


def start(settings: Settings, params: Any = None) -> dict[str, Any]:
    from serving.experiments import api

    return api.start(settings, _key(params).key)


def stop(settings: Settings, params: Any = None) -> dict[str, Any]:
    from serving.experiments import api

    return api.stop(settings, _key(params).key)


def list_experiments(settings: Settings, params: Any = None) -> dict[str, Any]:
    from serving.experiments import api

    return api.list_experiments(settings)


def show(settings: Settings, params: Any = None) -> dict[str, Any]:
    from serving.experiments import api

    p = _key(params)
    return api.show(settings, p.key, p.version)


@dataclass(frozen=True)
class AssignParams:
    key: str = ""
    user: str = ""
    device: str | None = None
    country: str | None = None
    returning: bool | None = None


def assign(settings: Settings, params: Any = None) -> dict[str, Any]:
    from aisle.core.errors import BadInput
    from serving.experiments import api

    p = parse_params(AssignParams, params)
    if not p.key or not p.user:
        raise BadInput("give the experiment key and a user id")
    return api.assign(settings, p.key, p.user, device=p.device, country=p.country, returning=p.returning)


@dataclass(frozen=True)
class TrafficParams:
    users: int = 1000
    minutes: float = 5.0
    rate: float | None = None  # requests/s; None: as fast as `concurrency` clients go
    seed: int = 0
    requests: int | None = None
    concurrency: int = 8
    k: int = 10
    url: str | None = None  # default: the service's address from settings
    shop: str | None = None  # default: $AISLE_HOME/raw/shop


def default_service_url(settings: Settings) -> str:
    """Where `aisle serve` answers by default (the serving settings name it once they exist)."""
    url = getattr(settings, "serving_url", None)
    return str(url) if url else "http://127.0.0.1:3000"


def simulate_traffic(
    settings: Settings, params: Any = None, *, progress: Any = None, stop: Any = None
) -> dict[str, Any]:
    """Simulated shoppers of the generated shop call the running service and act on its answers."""
    from serving.traffic import TrafficPlan, run_traffic

    p = parse_params(TrafficParams, params)
    plan = TrafficPlan(
        users=p.users,
        minutes=p.minutes,
        rate=p.rate,
        requests=p.requests,
        seed=p.seed,
        concurrency=p.concurrency,
        k=p.k,
    )
    shop = Path(p.shop) if p.shop else settings.paths.raw / "shop"
    url = p.url or default_service_url(settings)
    summary = run_traffic(url, shop, plan, progress=progress, stop=stop)
    summary["ok"] = summary["answered"] > 0 and not summary["stopped_early"] and summary["failed"] == 0
    if not summary["ok"]:
        summary["problem"] = _traffic_problem(summary)
    return {"url": url, "shop": str(shop), **summary}


def _traffic_problem(summary: dict[str, Any]) -> str:
    if summary["answered"] == 0:
        return f"the service answered none of {summary['requests']} requests ({summary['errors']})"
    if summary["failed"]:
        return f"{summary['failed']} of {summary['requests']} requests failed ({summary['errors']})"
    return (
        f"only {summary['requests']} of {summary['planned_requests']} requests fitted in the time bound; "
        "raise --minutes or --rate"
    )


@dataclass(frozen=True)
class AnalyzeParams:
    key: str = ""
    version: int | None = None
    html: str | None = None  # default: $AISLE_HOME/experiments/KEY/vN/report.html
    drain: bool = True  # first move what waits on Kafka (exposures, events) into the lake
    drain_seconds: float = 120.0
    record_look: bool = True  # each analysis read counts as a look for the sequential interval


def _drain(settings: Settings, seconds: float) -> dict[str, Any]:
    """Exposures and outcome events still on Kafka into the lake, each consumer until it is idle."""
    from aisle.app.jobs import ingest, monitoring

    exposures = monitoring.collect(settings, {"max_seconds": seconds, "idle_seconds": 5.0})
    events = ingest.stream(settings, {"max_seconds": seconds, "idle_seconds": 5.0, "push_features": False})
    return {"exposures": exposures, "events": events}


def analyze(settings: Settings, params: Any = None) -> dict[str, Any]:
    """Attribute outcomes to the experiment's exposures and analyse them; JSON summary + HTML report."""
    import json
    from datetime import UTC, datetime, timedelta

    from aisle.core.errors import BadInput
    from monitoring.experiments.analysis import analyze as run_analysis
    from monitoring.experiments.attribution import attribute_experiment, experiment_dir
    from monitoring.experiments.pre_period import activity_before
    from monitoring.experiments.report import write
    from serving.experiments.api import open_store

    p = parse_params(AnalyzeParams, params)
    if not p.key:
        raise BadInput("give the experiment key")
    store = open_store(settings)
    try:
        exp = store.get(p.key, p.version)
        if exp.started_at is None:
            raise BadInput(f"experiment {p.key!r} version {exp.version} has not started; nothing to analyse")
        drained = _drain(settings, p.drain_seconds) if p.drain else None
        until = exp.stopped_at or datetime.now(UTC)
        window = timedelta(hours=settings.monitor_attribution_hours)
        attributed = attribute_experiment(settings, exp, until=until, window=window)
        covariate, pre_period = activity_before(settings.paths.lake, exp.started_at)
        previous = [(look.fraction, look.users) for look in store.looks(exp)]
        summary = run_analysis(
            attributed.frame,
            exp.spec,
            started_at=exp.started_at,
            now=until,
            covariate=covariate,
            previous_looks=previous,
        )
        if p.record_look:
            store.record_look(exp, summary["sequential"]["fraction_of_plan"], summary["users"])
    finally:
        store.close()
    summary.update(
        version=exp.version,
        status=exp.status,
        started_at=exp.started_at.isoformat(),
        analysed_at=datetime.now(UTC).isoformat(),
        attribution=attributed.counts,
        pre_period=pre_period,
    )
    if drained is not None:
        summary["drained"] = {
            "exposures_stored": drained["exposures"].get("stored"),
            "events_accepted": drained["events"].get("accepted"),
        }
    out_dir = experiment_dir(settings, exp)
    html_path = Path(p.html) if p.html else out_dir / "report.html"
    write(summary, html_path)
    (out_dir / "analysis.json").write_text(json.dumps(summary, indent=2, default=str))
    summary["html"] = str(html_path)
    summary["json"] = str(out_dir / "analysis.json")
    if not summary["exposures"]:
        summary["ok"] = False
        summary["problem"] = (
            f"no exposures of {exp.key} v{exp.version} in the lake: is the service serving it, and did "
            "`aisle monitor collect` (or this command's drain) run?"
        )
    elif not attributed.counts["reconciled"]:
        summary["ok"] = False
        summary["problem"] = f"attribution counts do not reconcile: {attributed.counts}"
    return summary
