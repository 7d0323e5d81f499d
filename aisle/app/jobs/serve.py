"""Jobs: run the recommendation service, and deploy a new champion to a running one.

``deploy_service`` (the DAG) runs ``smoke`` then ``reload``: the running service loads the new champion
beside the one it serves and answers real shoppers with it (every hard rule must hold), and only then
swaps it in and proves, with a real /recommend, that the new version answers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from aisle.app.jobs import parse_params
from aisle.core.errors import AisleError, BadInput
from aisle.core.settings import Settings


@dataclass(frozen=True)
class ServeParams:
    port: int = 3000
    workers: int = 1
    threads: int = 1
    host: str = "127.0.0.1"  # 0.0.0.0 in a container


def serve(settings: Settings, params: Any = None) -> dict[str, Any]:
    """``aisle serve``: the service in the foreground until interrupted."""
    from aisle.app.server import serve_foreground

    p = parse_params(ServeParams, params)
    started = time.perf_counter()
    code = serve_foreground(settings, p.port, p.workers, p.threads, host=p.host)
    if code not in (0, -2, -15):  # a clean stop after Ctrl-C / SIGTERM is not a failure
        raise AisleError(f"the service exited with code {code}; see the output above")
    return {
        "host": p.host,
        "port": p.port,
        "workers": p.workers,
        "threads": p.threads,
        "seconds": round(time.perf_counter() - started, 1),
    }


@dataclass(frozen=True)
class DeployParams:
    version: str | None = None  # default: the registry's current champion
    users: int = 20  # shoppers from the lake the smoke test answers
    k: int = 10
    url: str | None = None  # default: settings.serving_url


def _admin(settings: Settings) -> str:
    token = settings.admin_token
    if token is None:
        raise BadInput(
            "deploying to the service needs AISLE_ADMIN_TOKEN (the token the service was started with)"
        )
    return token.get_secret_value()


def _champion(settings: Settings, version: str | None) -> str:
    from models import registry

    chosen = version or registry.alias_version(settings, registry.CHAMPION)
    if chosen is None:
        raise BadInput("there is no champion to deploy; run `aisle train` (or promote a version) first")
    return chosen


def _sample_users(settings: Settings, n: int) -> list[str]:
    """The most recently active shoppers in the lake: they have the richest online context."""
    from models.data import load_events

    if n <= 0:
        return []
    try:
        events = load_events(settings)
    except BadInput:
        return []
    return events["user_id"].iloc[::-1].drop_duplicates().head(n).tolist()


def _running(url: str) -> str | None:
    """None when a service answers at ``url``, else why not (one sentence)."""
    from aisle.core.errors import ServiceUnavailable
    from serving.client import call

    try:
        call(url, "/healthz", timeout_s=5)
    except ServiceUnavailable as exc:
        return f"{exc}; nothing to deploy to (a service started later loads the champion itself)"
    return None


def smoke(settings: Settings, params: Any = None) -> dict[str, Any]:
    """Ask the running service to try the new champion on real shoppers; fail when a rule breaks.

    With no service running there is nothing to deploy to: the summary says ``skipped`` and why.
    """
    from serving.client import call

    p = parse_params(DeployParams, params)
    url = p.url or settings.serving_url
    version = _champion(settings, p.version)
    absent = _running(url)
    if absent is not None:
        return {"url": url, "version": version, "skipped": True, "reason": absent}
    body = {"version": version, "users": _sample_users(settings, p.users), "k": p.k}
    reply = call(url, "/admin/smoke", body, token=_admin(settings), timeout_s=300)
    if reply.status != 200:
        raise AisleError(f"smoke test of v{version} at {url} answered {reply.status}: {reply.body}")
    result = dict(reply.body)
    if not result.get("ok"):
        raise AisleError(f"v{version} failed its smoke test: {'; '.join(result.get('problems', []))}")
    result.pop("lists", None)
    return {"url": url, **result}


def reload(settings: Settings, params: Any = None) -> dict[str, Any]:
    """Make the running service serve the champion now, then check a real answer comes from it."""
    from serving.client import call

    p = parse_params(DeployParams, params)
    url = p.url or settings.serving_url
    version = _champion(settings, p.version)
    token = _admin(settings)
    reply = call(url, "/admin/reload", {"alias": "champion", "version": version}, token=token, timeout_s=300)
    if reply.status != 200:
        raise AisleError(f"reload at {url} answered {reply.status}: {reply.body}")
    served = _wait_served(url, version, timeout_s=120.0)
    return {"url": url, "version": version, "previous": reply.body.get("previous"), "served_by": served}


def _wait_served(url: str, version: str, timeout_s: float, in_a_row: int = 5) -> int:
    """Probe /recommend until ``in_a_row`` consecutive answers come from ``version`` (with several
    workers each follows the reload marker on its own refresh tick); returns how many probes it took."""
    from serving.client import call

    deadline = time.monotonic() + timeout_s
    probes = streak = 0
    last: Any = None
    while time.monotonic() < deadline:
        reply = call(url, "/recommend", {"user_id": "__deploy_probe__", "k": 5})
        probes += 1
        last = reply.body.get("model_version") if isinstance(reply.body, dict) else reply.status
        streak = streak + 1 if reply.status == 200 and last == version else 0
        if streak >= in_a_row:
            return probes
        time.sleep(0.2)
    raise AisleError(f"after the reload /recommend still answered from {last}, not version {version}")
