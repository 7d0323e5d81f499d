"""The BentoML service: HTTP routes over :class:`serving.runtime.Runtime`, nothing more.

Run it with ``aisle serve [--port 3000] [--workers N]`` (which runs ``bentoml serve
serving.service:Aisle``), or build a Bento from ``bentofile.yaml``. Routes:

* ``POST /recommend``, ``POST /similar``, ``POST /feedback`` (202), ``POST /search``: see
  ``docs/serving.md`` and ``docs/search.md``;
* ``/ui``: the storefront and the analyst pages (``serving/ui``, ``docs/storefront.md``);
* ``POST /constant``: a fixed answer of /recommend's shape with no work behind it, the framework's own
  cost, which ``bench/bench_serving.py`` measures beside /recommend;
* ``GET /healthz``, ``GET /readyz`` (a policy loaded and Redis reachable), ``GET /metrics``;
* ``/admin/reload``, ``/admin/smoke``, ``/admin/status``: bearer token ``AISLE_ADMIN_TOKEN``;
* ``/admin/experiments…``: A/B experiments (create, start, stop, list, show, assign, the last analysis),
  the same operations as ``aisle experiment …`` (``serving.experiments.api``), same token;
* ``GET /docs.json``: the OpenAPI document; ``/`` its browsable page.

BentoML arguments (``--arg name=value``): ``workers`` (processes, default 1) and ``threads`` (request
threads per worker, default 1: the pipeline is CPU-bound, more threads only interleave under the GIL;
``/recommend`` and ``/constant`` run on the event loop itself).
Module import does no I/O: each worker loads its policy in ``__init__``.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

import bentoml
from fastapi import FastAPI, HTTPException

from aisle.core.errors import BadInput
from aisle.core.settings import get_settings
from serving import metrics
from serving.experiments import api as experiments_api
from serving.http import AdminAuth, BodyLimit, JsonApi
from serving.latency import cancel_request_timers, freeze_heap
from serving.logs import quiet_client_errors
from serving.runtime import NotReady, Runtime, UnknownItem
from serving.schemas import (
    FeedbackAccepted,
    FeedbackRequest,
    RecommendRequest,
    RecommendResponse,
    ReloadRequest,
    ScoredItem,
    SearchRequest,
    SearchResponse,
    SimilarRequest,
    SimilarResponse,
    SmokeRequest,
)
from serving.search import SearchNotReady
from serving.ui.app import ui

log = logging.getLogger("bentoml.aisle.service")

cancel_request_timers()
_ARGS = vars(bentoml.use_arguments())
WORKERS = int(_ARGS.get("workers", 1))
THREADS = int(_ARGS.get("threads", 1))
#: Longest a request may take (a model reload on /admin/reload included) before BentoML answers 504.
TRAFFIC_TIMEOUT_S = 120
API_ROUTES = ("/recommend", "/similar", "/feedback", "/search", "/constant")

admin = FastAPI(title="Aisle admin", description="Reload and smoke-test policies (bearer token).")

_CONSTANT = RecommendResponse(
    request_id="constant",
    items=[ScoredItem(item_id=f"item-{i}", score=1.0 - i / 10, reason="constant") for i in range(10)],
    model_version="constant",
    variant="constant",
    degraded=False,
)


def _not_found(exc: Exception) -> bentoml.exceptions.NotFound:
    return bentoml.exceptions.NotFound(str(exc))


@bentoml.asgi_app(ui, path="/ui")
@bentoml.asgi_app(admin, path="/admin")
@bentoml.service(
    name="aisle",
    workers=WORKERS,
    threads=THREADS,
    traffic={"timeout": TRAFFIC_TIMEOUT_S},
    logging={"access": {"enabled": False}},
)
class Aisle:
    def __init__(self) -> None:
        started = time.perf_counter()
        quiet_client_errors()
        warnings.filterwarnings("ignore", category=DeprecationWarning)  # libraries' notices, not ours
        self.settings = get_settings()
        self.runtime = Runtime(self.settings)
        self.runtime.start()
        self.started_in = time.perf_counter() - started
        log.info(
            "worker %d ready in %.1f s: %s", os.getpid(), self.started_in, self.runtime.policies.snapshot()
        )

    @bentoml.on_startup
    def _freeze(self) -> None:
        freeze_heap()

    @bentoml.on_shutdown
    def _stop(self) -> None:
        self.runtime.stop()

    def __is_ready__(self) -> bool:
        return self.runtime.ready()

    # ------------------------------------------------------------------ public API

    @bentoml.api(route="/recommend")
    async def recommend(self, request: RecommendRequest, /, ctx: bentoml.Context) -> RecommendResponse:
        """Top-k items for a shopper (unknown shoppers get cold-start lists), with reasons."""
        # on the event loop, not in BentoML's request thread: ~2 ms of CPU with nothing to await (the
        # Redis read has a short timeout and a circuit breaker), where the hop to a thread and back
        # costs the GIL hand-overs this path is measured by (docs/performance.md)
        started = time.perf_counter()
        try:
            response, degraded = self.runtime.recommend(request)
        except NotReady as exc:
            metrics.ERRORS.labels("recommend").inc()
            raise bentoml.exceptions.ServiceUnavailable(str(exc)) from None
        except Exception:
            metrics.ERRORS.labels("recommend").inc()
            raise
        if degraded.reason:
            ctx.response.headers["X-Aisle-Degraded"] = degraded.reason[:200]
        metrics.REQUESTS.labels("recommend").inc()
        metrics.REQUEST_SECONDS.labels("recommend").observe(time.perf_counter() - started)
        return response

    @bentoml.api(route="/similar")
    def similar(self, request: SimilarRequest, /) -> SimilarResponse:
        """Items like the given one; 404 for an item the model does not know."""
        started = time.perf_counter()
        try:
            response = self.runtime.similar(request)
        except UnknownItem as exc:
            raise _not_found(exc) from None
        except NotReady as exc:
            raise bentoml.exceptions.ServiceUnavailable(str(exc)) from None
        metrics.REQUESTS.labels("similar").inc()
        metrics.REQUEST_SECONDS.labels("similar").observe(time.perf_counter() - started)
        return response

    @bentoml.api(route="/search")
    def search(self, request: SearchRequest, /) -> SearchResponse:
        """Catalog items by meaning; re-ranked for the shopper's taste when ``user_id`` is given."""
        started = time.perf_counter()
        try:
            response = self.runtime.search(request)
        except (NotReady, SearchNotReady) as exc:
            metrics.ERRORS.labels("search").inc()
            raise bentoml.exceptions.ServiceUnavailable(str(exc)) from None
        metrics.REQUESTS.labels("search").inc()
        metrics.REQUEST_SECONDS.labels("search").observe(time.perf_counter() - started)
        return response

    @bentoml.api(route="/feedback")
    def feedback(self, request: FeedbackRequest, /, ctx: bentoml.Context) -> FeedbackAccepted:
        """Shop events (view, click, purchase ...) → Kafka ``events``; 202 even while Kafka is away."""
        try:
            accepted = self.runtime.feedback(request)
        except BadInput as exc:
            raise bentoml.exceptions.InvalidArgument(str(exc)) from None
        ctx.response.status_code = 202
        metrics.REQUESTS.labels("feedback").inc()
        return accepted

    @bentoml.api(route="/constant")
    async def constant(self) -> RecommendResponse:
        """A fixed 10-item answer with no work behind it: the framework's own cost, for benchmarks."""
        return _CONSTANT

    # ------------------------------------------------------------------ admin (bearer token)

    @admin.post("/reload")
    def reload(self, body: ReloadRequest | None = None) -> dict[str, Any]:
        """Load the alias's current version (or the one given) now; other workers follow within a refresh."""
        body = body or ReloadRequest.model_validate({})
        previous = self.runtime.policies.get(body.alias)
        started = time.perf_counter()
        try:
            served = self.runtime.load(body.alias, body.version)
        except BadInput as exc:
            raise HTTPException(404, str(exc)) from None
        except Exception as exc:
            raise HTTPException(500, f"loading {body.alias!r} failed: {exc}") from None
        self.runtime.request_reload()
        return {
            "alias": served.alias,
            "version": served.version,
            "previous": previous.version if previous else None,
            "degraded": served.degraded,
            "seconds": round(time.perf_counter() - started, 3),
            "pid": os.getpid(),
        }

    @admin.post("/smoke")
    def smoke(self, body: SmokeRequest) -> dict[str, Any]:
        """Try a registered version on real shoppers without serving it: its lists must obey every rule."""
        from serving.smoke import smoke_test

        try:
            return smoke_test(self.runtime, body.version, body.users, body.k)
        except BadInput as exc:
            raise HTTPException(404, str(exc)) from None

    # ------------------------------------------------------------------ admin: experiments

    @admin.get("/experiments")
    def experiments_list(self) -> dict[str, Any]:
        """Every experiment's latest version and status."""
        return _experiments(lambda: experiments_api.list_experiments(self.settings))

    @admin.post("/experiments")
    def experiments_create(self, definition: dict[str, Any]) -> dict[str, Any]:
        """Store a definition (the YAML file's fields, as JSON) as a draft; 422 names what is wrong."""
        return _experiments(lambda: experiments_api.create(self.settings, definition))

    @admin.get("/experiments/{key}")
    def experiments_show(self, key: str, version: int | None = None) -> dict[str, Any]:
        return _experiments(lambda: experiments_api.show(self.settings, key, version))

    @admin.post("/experiments/{key}/start")
    def experiments_start(self, key: str) -> dict[str, Any]:
        """Start the draft; this worker assigns at once, the others within a refresh."""
        out = _experiments(lambda: experiments_api.start(self.settings, key))
        self.runtime.refresh()
        return out

    @admin.post("/experiments/{key}/stop")
    def experiments_stop(self, key: str) -> dict[str, Any]:
        out = _experiments(lambda: experiments_api.stop(self.settings, key))
        self.runtime.refresh()
        return out

    @admin.get("/experiments/{key}/assign/{user_id}")
    def experiments_assign(
        self,
        key: str,
        user_id: str,
        device: str | None = None,
        country: str | None = None,
        returning: bool | None = None,
    ) -> dict[str, Any]:
        """Which variant a shopper gets in the experiment, and why."""
        context = {"device": device, "country": country, "returning": returning}
        return _experiments(lambda: experiments_api.assign(self.settings, key, user_id, **context))

    @admin.get("/experiments/{key}/analysis")
    def experiments_analysis(self, key: str, version: int | None = None) -> dict[str, Any]:
        """The last analysis `aisle experiment analyze` wrote (the service does not run analyses)."""
        return _experiments(lambda: experiments_api.last_analysis(self.settings, key, version))

    @admin.get("/status")
    def status(self) -> dict[str, Any]:
        """Loaded policies, online store and Kafka state, queues, and the last errors of this worker."""
        return {**self.runtime.status(), "started_in_s": round(self.started_in, 3)}


def _experiments(call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """An experiment operation, its errors as HTTP statuses: unknown 404, collision 409, bad input 422,
    store down 503."""
    from aisle.core.errors import ServiceUnavailable
    from serving.experiments.store import Conflict, UnknownExperiment

    try:
        return call()
    except UnknownExperiment as exc:
        raise HTTPException(404, str(exc)) from None
    except Conflict as exc:
        raise HTTPException(409, str(exc)) from None
    except BadInput as exc:
        raise HTTPException(422, str(exc)) from None
    except ServiceUnavailable as exc:
        raise HTTPException(503, str(exc)) from None


def _admin_token() -> str | None:
    token = get_settings().admin_token
    return token.get_secret_value() if token else None


# first added is outermost: the size limit sees every body before anything parses it
Aisle.add_asgi_middleware(BodyLimit, max_bytes=lambda: get_settings().max_request_bytes)  # type: ignore[attr-defined]
Aisle.add_asgi_middleware(AdminAuth, token=_admin_token)  # type: ignore[attr-defined]
Aisle.add_asgi_middleware(JsonApi, paths=API_ROUTES)  # type: ignore[attr-defined]
