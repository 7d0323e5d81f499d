"""Guardrails of the live service: latency p99, share of errors, share of degraded responses.

Latency and degraded share come from the exposures of the window (every response is logged with its
latency and whether it was degraded), so they are measured on the same clock and window as drift and
quality. Errors never produce an exposure, so the error share is read from the service's Prometheus
``/metrics`` at ``AISLE_SERVING_URL``: failed requests / all requests since the service started, from
the counters named in :data:`REQUESTS` and :data:`ERRORS` (summed over their labels). A service that
does not answer is reported in the summary, not a failure of the report.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aisle.core.settings import Settings

#: Prometheus counters read from the service (``serving.metrics.REQUESTS`` / ``ERRORS``; a unit test
#: keeps the names in step without importing the service's metrics registry here).
REQUESTS: Final = "aisle_requests"
ERRORS: Final = "aisle_errors"
METRICS_TIMEOUT_S: Final = 5.0


def from_exposures(exposures: pa.Table) -> dict[str, Any]:
    """p99 latency (ms) and degraded share of the responses in the window."""
    if exposures.num_rows == 0:
        return {"responses": 0, "latency_p99_ms": None, "degraded_share": None}
    latency = exposures["latency_ms"].drop_null().to_numpy(zero_copy_only=False).astype(float)
    degraded = pc.sum(pc.cast(exposures["degraded"].fill_null(False), pa.int64())).as_py() or 0
    return {
        "responses": exposures.num_rows,
        "latency_p99_ms": round(float(np.percentile(latency, 99)), 3) if len(latency) else None,
        "degraded_share": round(degraded / exposures.num_rows, 6),
    }


def parse_counters(text: str) -> dict[str, float]:
    """Counter totals by family name (``_total`` samples summed over labels) from Prometheus text."""
    from prometheus_client.parser import text_string_to_metric_families

    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_total"):
                name = sample.name.removesuffix("_total")
                totals[name] = totals.get(name, 0.0) + float(sample.value)
    return totals


def from_metrics(url: str) -> dict[str, Any]:
    """Error share from the service's ``/metrics``; an unreachable service is reported, not fatal."""
    try:
        with urllib.request.urlopen(url, timeout=METRICS_TIMEOUT_S) as response:
            text = response.read().decode("utf-8", errors="replace")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return {"metrics_url": url, "error": f"cannot read {url} ({getattr(exc, 'reason', exc)})"}
    counters = parse_counters(text)
    requests, errors = counters.get(REQUESTS), counters.get(ERRORS)
    if not requests:
        return {"metrics_url": url, "error": f"{url} has no {REQUESTS}_total counter (or it is zero)"}
    return {
        "metrics_url": url,
        "requests": requests,
        "errors": errors or 0.0,
        "error_share": (errors or 0.0) / requests,
    }


def check(settings: Settings, exposures: pa.Table) -> dict[str, Any]:
    """Measured values, their limits and which limits are breached."""
    measured = from_exposures(exposures)
    measured["service"] = from_metrics(settings.serving_url.rstrip("/") + "/metrics")
    limits = {
        "latency_p99_ms": settings.monitor_latency_ms,
        "degraded_share": settings.monitor_degraded_share,
        "error_share": settings.monitor_error_share,
    }
    values = {
        "latency_p99_ms": measured["latency_p99_ms"],
        "degraded_share": measured["degraded_share"],
        "error_share": measured.get("service", {}).get("error_share"),
    }
    breaches = [
        {"guardrail": name, "value": values[name], "limit": limit}
        for name, limit in limits.items()
        if values[name] is not None and values[name] > limit
    ]
    return {**measured, "limits": limits, "breaches": breaches}
