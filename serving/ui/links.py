"""Links to the other UIs, wherever they run: MLflow, Airflow, Evidently, the Data Docs, the API.

A link is given only when its target answers now (probed with a short timeout, remembered for half a
minute); otherwise the entry says how to start it. The Data Docs are files, which a page served over
HTTP may not open, so the service serves that folder itself under ``/ui/data-docs/``.
"""

from __future__ import annotations

import time
from typing import Any, Final

from aisle.core.endpoints import answers as http_answers
from aisle.core.endpoints import recorded_ui_url
from aisle.core.settings import Settings

PROBE_TIMEOUT_S: Final = 0.5
REMEMBER_S: Final = 30.0
_answers: dict[str, tuple[float, bool]] = {}


def answers(url: str) -> bool:
    """Whether ``url`` answers HTTP at all (any status: a login page is still the UI)."""
    known = _answers.get(url)
    if known is not None and time.monotonic() - known[0] < REMEMBER_S:
        return known[1]
    ok = http_answers(url, timeout_s=PROBE_TIMEOUT_S)
    _answers[url] = (time.monotonic(), ok)
    return ok


def _entry(name: str, url: str | None, hint: str, about: str) -> dict[str, Any]:
    live = url is not None and answers(url)
    return {"name": name, "url": url if live else None, "hint": None if live else hint, "about": about}


def links(
    settings: Settings, data_docs: bool, comparison: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    mlflow_uri = settings.effective_mlflow_uri
    external = mlflow_uri.rstrip("/") if mlflow_uri.startswith(("http://", "https://")) else None
    mlflow_about = "runs, metrics, the registry and its champion"
    if comparison:
        mlflow_about += f"; the comparison above is run {comparison['run_id'][:8]}"
    out = [
        _entry(
            "MLflow",
            external or recorded_ui_url(settings, "mlflow"),
            "not running; start it with `aisle ui mlflow`",
            mlflow_about,
        ),
        _entry(
            "Airflow",
            recorded_ui_url(settings, "airflow"),
            "not running; start it with `aisle ui airflow`",
            "the DAGs that run the loop",
        ),
        _entry(
            "Evidently",
            recorded_ui_url(settings, "evidently"),
            "not running; start it with `aisle ui evidently`",
            "drift and quality dashboards",
        ),
        {
            "name": "Data Docs",
            "url": "/ui/data-docs/index.html" if data_docs else None,
            "hint": None if data_docs else "none yet: `aisle ingest batch` builds them",
            "about": "Great Expectations validation results of every ingested batch (served by this service)",
        },
        {"name": "API", "url": "/", "hint": None, "about": "the service's OpenAPI page"},
        {"name": "Metrics", "url": "/metrics", "hint": None, "about": "Prometheus metrics"},
    ]
    return out
