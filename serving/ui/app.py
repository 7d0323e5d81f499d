"""The storefront and analyst pages, mounted on the service at ``/ui`` (``serving.service``).

Pages are static files (``static/``: plain HTML, CSS and JavaScript, nothing fetched from elsewhere);
the JSON routes under ``/ui/api`` are the pages' own and stay out of the service's OpenAPI document;
the browser calls the service's own API (/recommend, /similar, /feedback, /search) for everything a
shop would, and this app's small JSON routes for what the API does not answer (a shopper's recent
activity, product details, the analyst charts' data). Routes reach the worker's :class:`Runtime`
through BentoML's current service, so the pages show exactly what this worker serves.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Final

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from serving.ui import shoppers
from serving.ui.insights import Insights, data_docs_index
from serving.ui.lake_stats import LakeStatsCache
from serving.ui.links import links

STATIC: Final = Path(__file__).with_name("static")
MAX_IDS: Final = 200

ui = FastAPI(title="Aisle storefront", docs_url=None, redoc_url=None, openapi_url=None)
ui.mount("/static", StaticFiles(directory=STATIC), name="static")
log = logging.getLogger("bentoml.aisle.ui")


@ui.exception_handler(Exception)
async def _failed(_request: Request, exc: Exception) -> JSONResponse:
    """A page's data call that failed answers JSON that says why (the page shows it), never a bare 500."""
    log.exception("storefront route failed")
    return JSONResponse({"error": f"{type(exc).__name__}: {exc}"}, status_code=500)


class _State:
    """Per worker (each worker is its own process): lake figures and the analyst charts, cached."""

    def __init__(self, runtime: Any) -> None:
        self.lake = LakeStatsCache(runtime.settings)
        self.insights = Insights()


_state: _State | None = None
_state_lock = threading.Lock()


def _runtime() -> Any:
    import bentoml

    return bentoml.get_current_service().runtime


def _ui_state(runtime: Any) -> _State:
    global _state
    with _state_lock:
        if _state is None:
            _state = _State(runtime)
        return _state


def _page(name: str) -> FileResponse:
    return FileResponse(STATIC / name, media_type="text/html", headers={"Cache-Control": "no-cache"})


@ui.get("/", include_in_schema=False)
def storefront() -> FileResponse:
    return _page("index.html")


@ui.get("/insights", include_in_schema=False)
def insights_page() -> FileResponse:
    return _page("insights.html")


@ui.get("/api/status", include_in_schema=False)
def status() -> dict[str, Any]:
    runtime = _runtime()
    served = runtime.policies.get()
    return {
        "model_version": served.version if served else None,
        "degraded": served.degraded if served else True,
        "catalog_items": len(runtime.catalog.snapshot),
        "search": runtime.search_index.status(),
    }


@ui.get("/api/shoppers/random", include_in_schema=False)
def random_shopper() -> dict[str, Any]:
    runtime = _runtime()
    user = shoppers.random_shopper(_ui_state(runtime).lake.get())
    if user is None:
        raise HTTPException(404, "the lake holds no shoppers yet")
    return {"user_id": user}


@ui.get("/api/shoppers/{user_id}", include_in_schema=False)
def shopper(user_id: str) -> dict[str, Any]:
    if not 0 < len(user_id) <= 128:
        raise HTTPException(422, "a shopper id has 1 to 128 characters")
    return shoppers.shopper_view(_runtime(), user_id)


@ui.get("/api/items", include_in_schema=False)
def items(ids: str = Query(..., description="Comma-separated item ids")) -> dict[str, Any]:
    wanted = [i for i in ids.split(",") if i][:MAX_IDS]
    return {"items": _runtime().catalog.snapshot.details(wanted)}


@ui.get("/api/items/{item_id}", include_in_schema=False)
def item(item_id: str) -> Any:
    runtime = _runtime()
    found = shoppers.item_view(runtime, _ui_state(runtime).lake.get(), item_id)
    if found is None:
        return JSONResponse({"error": f"item {item_id!r} is not in the catalog"}, status_code=404)
    return found


@ui.get("/api/insights", include_in_schema=False)
def insights() -> dict[str, Any]:
    runtime = _runtime()
    state = _ui_state(runtime)
    result = dict(state.insights.get(runtime, state.lake.get()))
    comparison = result.get("models") if isinstance(result.get("models"), dict) else None
    docs = data_docs_index(runtime.settings) is not None
    result["links"] = links(
        runtime.settings, docs, comparison if comparison and "run_id" in comparison else None
    )
    return result


@ui.get("/data-docs/{path:path}", include_in_schema=False)
def data_docs(path: str) -> FileResponse:
    """The Great Expectations Data Docs site, read from ``$AISLE_HOME/gx`` (files only, no listing)."""
    index = data_docs_index(_runtime().settings)
    if index is None:
        raise HTTPException(404, "no Data Docs yet: ingest a batch first")
    root = index.parent.resolve()
    target = (root / (path or "index.html")).resolve()
    if root not in target.parents or not target.is_file():
        raise HTTPException(404, "no such page in the Data Docs")
    return FileResponse(target)
