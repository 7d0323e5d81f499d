"""Kafka plumbing shared by the producer and the consumer (kafka-python).

Works unchanged against Apache Kafka and the embedded Tansu broker. Tansu quirks handled here: admin
list/describe fail (so topics are created and "already exists" is accepted), and the first group join
takes about half the session timeout (so the timeouts are short).
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from aisle.core.errors import ServiceUnavailable

log = logging.getLogger(__name__)

#: How long the broker may hold a fetch that has no data yet. Tansu answers a held fetch when the hold
#: ends, not when data arrives, so with kafka-python's default (500 ms) the hold was the largest part of
#: the stream's freshness (fetch p50 193 ms → 47 ms at 20 ms, bench/bench_freshness.py). The price is up
#: to 50 empty fetches a second per partition leader when the topic is idle.
FETCH_MAX_WAIT_MS = 20

CONSUMER_TIMEOUTS: dict[str, Any] = {
    "session_timeout_ms": 6000,
    "heartbeat_interval_ms": 1000,
    "request_timeout_ms": 15000,
    "reconnect_backoff_ms": 200,
    "reconnect_backoff_max_ms": 5000,
}


def broker_reachable(bootstrap: str, timeout_s: float = 1.0) -> bool:
    """A cheap TCP probe of the first bootstrap address (for clear logs while the broker is away)."""
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s):
            return True
    except OSError:
        return False


def _unreachable(bootstrap: str) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"no Kafka broker answers at {bootstrap}; run `aisle services up` or set AISLE_KAFKA_BOOTSTRAP"
    )


def _connect(factory: Any, bootstrap: str, **config: Any) -> Any:
    """Build a kafka-python client, turning "cannot bootstrap" into one clear sentence."""
    from kafka.errors import KafkaError

    if not broker_reachable(bootstrap, timeout_s=2.0):
        raise _unreachable(bootstrap)
    try:
        return factory(bootstrap_servers=bootstrap, **config)
    except KafkaError:
        raise _unreachable(bootstrap) from None


def ensure_topic(bootstrap: str, topic: str, partitions: int = 3) -> None:
    """Create the topic if it does not exist (Tansu memory storage forgets topics on restart)."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    admin = _connect(KafkaAdminClient, bootstrap, client_id="aisle-admin", request_timeout_ms=10000)
    try:
        admin.create_topics([NewTopic(name=topic, num_partitions=partitions, replication_factor=1)])
    except TopicAlreadyExistsError:
        pass
    except KafkaError as exc:  # some brokers answer "already exists" in other words
        if "exist" not in str(exc).lower():
            raise ServiceUnavailable(f"could not create topic {topic!r} on {bootstrap}: {exc}") from None
    finally:
        admin.close()


def new_producer(bootstrap: str, **overrides: Any) -> Any:
    from kafka import KafkaProducer

    config: dict[str, Any] = {
        "client_id": "aisle-producer",
        "acks": 1,
        "linger_ms": 5,
        "batch_size": 256 * 1024,
        "retries": 5,
        **overrides,
    }
    return _connect(KafkaProducer, bootstrap, **config)


def new_consumer(bootstrap: str, topic: str, group: str, max_poll_records: int) -> Any:
    from kafka import KafkaConsumer

    consumer = _connect(
        KafkaConsumer,
        bootstrap,
        group_id=group,
        client_id="aisle-ingest",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=max_poll_records,
        fetch_max_bytes=32 * 1024 * 1024,
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        **CONSUMER_TIMEOUTS,
    )
    consumer.subscribe([topic])
    return consumer
