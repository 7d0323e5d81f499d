"""The demo's last stage: a champion-vs-popularity A/B experiment through simulated shoppers.

The experiment is defined and started in the store; the running service (or one started for this stage)
picks it up within its refresh; the generated shop's shoppers ask for recommendations and click, cart
and buy by their latent taste; the analysis drains Kafka into the lake, attributes and prints what each
variant earned. The experiment is stopped afterwards, so the service answers from the champion again.
"""

from __future__ import annotations

import time
from typing import Any

from aisle.core.console import counting_progress, err_console
from aisle.core.errors import AisleError
from aisle.core.settings import Settings

KEY = "demo-champion-vs-popularity"
#: Enough traffic for a clear answer on the demo shop, little enough for about a minute of requests.
TRAFFIC: dict[str, Any] = {
    "users": 1000,
    "requests": 2500,
    "concurrency": 8,
    "minutes": 5.0,
    "seed": 1,
}


def definition(alias: str) -> dict[str, Any]:
    return {
        "key": KEY,
        "description": f"Does the registered policy ({alias}) sell more than the same bestsellers for all?",
        "duration": "5m",
        "variants": [
            {"name": "popularity", "weight": 0.5, "strategy": "popularity"},
            {"name": "hybrid", "weight": 0.5, "alias": alias},
        ],
    }


def experiment_stage(settings: Settings, url: str | None) -> dict[str, Any]:
    """Run the experiment against the service at ``url`` (None: start one for this stage)."""
    from aisle.app.experiment_output import show_analysis
    from aisle.app.jobs import experiments as jobs
    from models import registry
    from serving.experiments import api

    alias = registry.CHAMPION if registry.alias_version(settings, registry.CHAMPION) else registry.CHALLENGER
    known = api.list_experiments(settings)["experiments"]
    if any(e["key"] == KEY and e["status"] == "running" for e in known):
        api.stop(settings, KEY)  # left by an interrupted demo in this home
    created = api.create(settings, definition(alias))["experiment"]
    api.start(settings, KEY)
    err_console.print(
        f"{KEY} v{created['version']}: popularity (control) vs the hybrid policy ({alias}), 50/50"
    )
    service = None
    try:
        if url is None:
            service = _start_service(settings)
            url = service.url
        _wait_until_assigned(url)
        total = int(TRAFFIC["requests"])
        with counting_progress("simulated shoppers", total=total) as advance:
            traffic = jobs.simulate_traffic(settings, {**TRAFFIC, "url": url}, progress=advance)
        err_console.print(
            f"{traffic['answered']:,} answers at {traffic['requests_per_s']} requests/s; shoppers sent "
            f"{traffic['events_sent']}"
        )
        if not traffic["ok"]:
            raise AisleError(f"the simulated traffic did not run as planned: {traffic['problem']}")
        with err_console.status("draining Kafka into the lake, attributing, analysing"):
            summary = jobs.analyze(settings, {"key": KEY})
        show_analysis(summary)
    finally:
        api.stop(settings, KEY)
        if service is not None:
            service.stop()
    err_console.print(f"stopped {KEY}: the service answers from the champion again")
    return {
        "key": KEY,
        "version": created["version"],
        "traffic": {k: traffic[k] for k in ("answered", "variants", "events_sent", "requests_per_s")},
        "verdict": summary["verdict"],
        "variants": summary["variants"],
        "attribution": {k: v for k, v in summary["attribution"].items() if k != "path"},
        "report": summary["html"],
        "ok": summary.get("ok", True),
    }


def _start_service(settings: Settings) -> Any:
    from aisle.app.server import start_service
    from aisle.app.services import free_port

    service = start_service(settings, free_port())
    service.wait_ready(600)
    return service


def _wait_until_assigned(url: str, timeout_s: float = 60.0) -> None:
    """The service re-reads the store every AISLE_SERVING_REFRESH_SECONDS: wait until it assigns."""
    from serving.client import call

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        variants = {
            call(url, "/recommend", {"user_id": f"u{i:05d}", "k": 1}).body["variant"] for i in range(6)
        }
        if variants & {"popularity", "hybrid"}:
            return
        time.sleep(1.0)
    raise AisleError(f"the service at {url} did not pick up {KEY} within {timeout_s:.0f} s")
