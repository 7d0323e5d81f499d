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
    rate: float | None = 20.0
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
