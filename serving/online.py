"""What the service reads from and writes to outside its process: the online context (with a circuit
breaker), Redis and Kafka connections, and the materialization watermark."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from aisle.core.settings import Settings
from models.context import OnlineContexts, RowContexts, from_online

log = logging.getLogger("bentoml.aisle.online")

#: After a failed online read, skip reads (answer degraded) for this long before trying again.
BREAKER_S: Final = 1.0


class OnlineReader:
    """The contract's online adapter (every read bounded by ``AISLE_ONLINE_READ_TIMEOUT_MS``) behind a
    circuit breaker: after a failed read, reads are skipped for ``BREAKER_S`` and answered as degraded,
    so a dead Redis costs one timeout per second rather than one per request; the first read after
    that tries again, so answers recover on their own when Redis is back."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._open_until = 0.0
        self.last_reason: str | None = None

    def read(self, user_ids: Sequence[str]) -> OnlineContexts:
        now = time.monotonic()
        if now < self._open_until:
            return OnlineContexts(RowContexts({}), degraded=True, reason=self.last_reason)
        result = from_online(self.settings, list(user_ids))
        if result.degraded:
            self._open_until = time.monotonic() + BREAKER_S
            if result.reason != self.last_reason:
                log.warning("online context unavailable: %s", result.reason)
            self.last_reason = result.reason
        elif self.last_reason is not None:
            log.info("online context is back")
            self.last_reason = None
        return result


def kafka_producer(settings: Settings, topic: str, retries: int) -> Any:
    """A kafka-python producer for ``topic`` (the feedback outbox's), after making sure the topic
    exists; short timeouts so a dead broker is noticed in seconds, not minutes."""
    from aisle.core.endpoints import kafka_bootstrap
    from ingestion.kafka_io import ensure_topic, new_producer

    bootstrap = kafka_bootstrap(settings)
    ensure_topic(bootstrap, topic)
    return new_producer(
        bootstrap,
        client_id=f"aisle-serving-{topic}",
        acks=1,
        max_block_ms=2000,
        request_timeout_ms=5000,
        retries=retries,
        linger_ms=2,
    )


def exposure_producer(settings: Settings, topic: str, linger_ms: int, capacity: int) -> Any:
    """The exposure log's producer: librdkafka through confluent-kafka (see
    :class:`serving.exposures.RdKafkaSender`), after making sure the topic exists (which raises while the
    broker is away, so the log retries). Records wait up to ``linger_ms`` to share a produce request;
    at most ``capacity`` wait inside librdkafka; one it cannot deliver within a minute is given up."""
    from confluent_kafka import Producer

    from aisle.core.endpoints import kafka_bootstrap
    from ingestion.kafka_io import ensure_topic
    from serving.exposures import RdKafkaSender

    bootstrap = kafka_bootstrap(settings)
    ensure_topic(bootstrap, topic)
    return RdKafkaSender(
        Producer(
            {
                "bootstrap.servers": bootstrap,
                "client.id": f"aisle-serving-{topic}",
                "acks": 1,
                "linger.ms": linger_ms,
                "queue.buffering.max.messages": max(capacity, 1),
                "message.timeout.ms": 60_000,
                "log_level": 3,  # errors only, and through Python's logging (the service log), not
                "logger": logging.getLogger("bentoml.aisle.librdkafka"),  # librdkafka's own stderr lines
            }
        )
    )


# ----------------------------------------------------------------------------- online store probes


def redis_reachable(settings: Settings, timeout_s: float = 0.25) -> bool:
    import redis

    from aisle.core.endpoints import redis_url

    try:
        client = redis.Redis.from_url(
            redis_url(settings), socket_connect_timeout=timeout_s, socket_timeout=timeout_s
        )
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def materialized_until(settings: Settings) -> datetime | None:
    """How far item features were materialized (the Feast registry's watermark); None when unknown."""
    try:
        from feature_repo.feature_views import ITEM_FEATURES
        from feature_repo.store import get_store

        store = get_store(settings)
        store.refresh_registry()
        return store.get_feature_view(ITEM_FEATURES).most_recent_end_time
    except Exception:
        return None
