"""The demo's serving stage: index the catalog for search, start the recommendation service on the
champion, call every endpoint, and leave it running with the ``curl`` lines to try it and the
storefront's URL (``aisle services down`` stops it)."""

from __future__ import annotations

import json
import secrets
import shlex
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

from aisle.app.server import check_port, record_detached, start_service
from aisle.app.services import free_port
from aisle.core.console import err_console
from aisle.core.errors import AisleError, BadInput
from aisle.core.settings import Settings


def _port(settings: Settings) -> int:
    """The configured service port when it is free, else any free one."""
    wanted = urlsplit(settings.serving_url).port or 3000
    try:
        check_port(wanted)
        return wanted
    except BadInput:
        return free_port()


def _curl(url: str, path: str, body: dict[str, Any] | None = None, token: str | None = None) -> str:
    parts = ["curl", "-s"]
    if token:
        parts += ["-H", f"Authorization: Bearer {token}"]
    if body is not None:
        parts += ["-H", "Content-Type: application/json", "-d", json.dumps(body)]
    return " ".join(shlex.quote(p) if " " in p or "{" in p else p for p in [*parts, url + path])


def _search_when_loaded(url: str, body: dict[str, Any], timeout_s: float = 60.0) -> Any:
    """/search once the worker has loaded the index (it does so beside start-up: 503 until then)."""
    from serving.client import call

    deadline = time.monotonic() + timeout_s
    while True:
        reply = call(url, "/search", body)
        if reply.status != 503 or time.monotonic() > deadline:
            return reply
        time.sleep(0.5)


def serving_stage(settings: Settings, user: str, keep_running: bool) -> dict[str, Any]:
    from aisle.app.jobs import search
    from serving.client import call

    token = settings.admin_token.get_secret_value() if settings.admin_token else secrets.token_hex(16)
    port = _port(settings)
    started = time.perf_counter()
    index = search.build(settings)  # ahead of the service, which then only loads it
    err_console.print(
        f"search index: {index['items']} items {'embedded' if index['built'] else 'up to date'} "
        f"in {index['seconds']} s"
    )
    service = start_service(settings, port, env={"AISLE_ADMIN_TOKEN": token})
    try:
        ready = service.wait_ready(600)
        url = service.url
        err_console.print(f"service ready at {url} in {ready:.1f} s (workers: {service.workers})")
        shown: dict[str, Any] = {"url": url, "ready_seconds": round(ready, 2)}

        known = call(url, "/recommend", {"user_id": user, "k": 5}).body
        err_console.print(
            f"/recommend for {user} (model v{known['model_version']}, degraded {known['degraded']}):"
        )
        for item in known["items"]:
            err_console.print(f"   {item['item_id']:10} {item['score']:8.4f}  {item['reason']}")
        unknown = call(url, "/recommend", {"user_id": "a-shopper-never-seen", "k": 3}).body
        err_console.print(f"/recommend for an unknown shopper: {[i['reason'] for i in unknown['items']]}")
        anchor = known["items"][0]["item_id"] if known["items"] else None
        similar = call(url, "/similar", {"item_id": anchor, "k": 3}).body if anchor else {"items": []}
        err_console.print(f"/similar to {anchor}: {[(i['item_id'], i['reason']) for i in similar['items']]}")
        event = {
            "event_id": uuid.uuid4().hex,
            "event_type": "view",
            "user_id": user,
            "item_id": anchor or "unknown",
            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "request_id": known["request_id"],
        }
        feedback = call(url, "/feedback", {"events": [event]})
        err_console.print(f"/feedback → {feedback.status} {feedback.body}")
        health = {path: call(url, path).status for path in ("/healthz", "/readyz")}
        metrics = str(call(url, "/metrics").body)
        stages = [line for line in metrics.splitlines() if line.startswith("aisle_stage_seconds_count")]
        status = call(url, "/admin/status", token=token).body
        err_console.print(
            f"health {health}; {len(stages)} stage histograms on /metrics; admin status ok: {bool(status)}"
        )
        shown |= {
            "recommend_items": len(known["items"]),
            "feedback_status": feedback.status,
            "health": health,
            "model_version": known["model_version"],
        }
        if any(code != 200 for code in health.values()) or feedback.status != 202 or not known["items"]:
            raise AisleError(f"the service answered, but not as it should: {shown}")

        err_console.rule("try it")
        for line in (
            _curl(url, "/recommend", {"user_id": user, "k": 5, "filters": {"price_max": 100}}),
            _curl(url, "/similar", {"item_id": anchor, "k": 5}),
            _curl(url, "/search", {"query": "something to boil water", "user_id": user, "k": 5}),
            _curl(url, "/feedback", {"events": [event]}),
            _curl(url, "/admin/status", token=token),
        ):
            err_console.print(line, highlight=False, soft_wrap=True)
        hits = _search_when_loaded(
            url, {"query": "a gift for someone who loves cooking", "user_id": user, "k": 3}
        )
        err_console.print(
            f"/search 'a gift for someone who loves cooking' → {[i['title'] for i in hits.body['items']]}"
            if hits.status == 200
            else f"/search answered {hits.status}: {hits.body}"
        )
        err_console.print(f"OpenAPI page: {url}/   (document: {url}/docs.json)   metrics: {url}/metrics")
        err_console.print(
            f"[bold]storefront: {url}/ui/[/]   analyst pages: {url}/ui/insights", highlight=False
        )
        shown["storefront"] = f"{url}/ui/"
        shown["search_status"] = hits.status
        if keep_running:
            record_detached(settings, service)
            err_console.print("the service keeps running; `aisle services down` stops it with the rest")
        shown["seconds"] = round(time.perf_counter() - started, 2)
        shown["running"] = keep_running
        return shown
    finally:
        if not keep_running:
            service.stop()
