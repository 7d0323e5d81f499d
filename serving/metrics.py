"""Prometheus metrics of the service, merged across workers on BentoML's ``/metrics``.

BentoML starts each worker with ``PROMETHEUS_MULTIPROC_DIR`` set, so plain ``prometheus_client`` metrics
defined here are aggregated over workers; BentoML adds its own ``bentoml_service_request_*`` series.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Histogram

_BUCKETS: Final = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

STAGE_SECONDS: Final = Histogram(
    "aisle_stage_seconds",
    "Time per stage of a /recommend answer (features = online context read)",
    ["stage"],
    buckets=_BUCKETS,
)
REQUEST_SECONDS: Final = Histogram(
    "aisle_request_seconds",
    "Time to answer, per endpoint, inside the handler",
    ["endpoint"],
    buckets=_BUCKETS,
)
REQUESTS: Final = Counter("aisle_requests", "Requests answered, per endpoint", ["endpoint"])
ERRORS: Final = Counter("aisle_errors", "Requests that failed inside the handler, per endpoint", ["endpoint"])
DEGRADED: Final = Counter(
    "aisle_degraded_responses", "Answers given without part of their inputs, per cause", ["cause"]
)
EXPOSURES_DROPPED: Final = Counter(
    "aisle_exposures_dropped", "Exposure records dropped because the buffer to Kafka was full"
)
EXPOSURES_SENT: Final = Counter("aisle_exposures_sent", "Exposure records handed to Kafka")
FEEDBACK_EVENTS: Final = Counter("aisle_feedback_events", "Feedback events accepted into the outbox")
FEEDBACK_DELIVERED: Final = Counter("aisle_feedback_delivered", "Feedback events acknowledged by Kafka")
RELOADS: Final = Counter("aisle_policy_loads", "Policies loaded, per alias and outcome", ["alias", "outcome"])
