"""Exposure log: every /recommend answer goes to the Kafka topic ``exposures``, off the request path.

The handler only puts a record into a bounded in-memory queue (``put_nowait``: microseconds, never
blocks); one thread per worker hands records to Kafka. When Kafka is slow or away the queue fills and
further records are dropped and counted (``aisle_exposures_dropped``), because a late exposure log must
never cost a shopper latency. Records held in the queue when a worker is killed are lost: exposure
logging is best effort by design, unlike feedback (see :mod:`serving.feedback`).

Record: ``request_id, user_id, items, scores, positions, variant, model_version, latency_ms, degraded,
ts``, and for A/B experiments ``experiment, experiment_version, error`` (the variant's own policy could
not answer), ``device, country``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from serving.metrics import EXPOSURES_DROPPED, EXPOSURES_SENT

log = logging.getLogger("bentoml.aisle.exposures")

RETRY_S: Final = 2.0
#: The sender thread sleeps this long between drains of the queue, and hands at most ``DRAIN_MAX`` records
#: to the producer per drain (the producer itself waits up to its linger before a produce request).
DRAIN_PAUSE_S: Final = 0.02
DRAIN_MAX: Final = 1000
_STOP: Final = object()


def exposure_record(
    request_id: str,
    user_id: str,
    items: list[str],
    variant: str,
    model_version: str,
    latency_ms: float,
    degraded: bool,
    scores: list[float] | None = None,
    *,
    experiment: str | None = None,
    experiment_version: int | None = None,
    error: bool = False,
    device: str | None = None,
    country: str | None = None,
) -> dict[str, Any]:
    """The one shape of an exposure (monitoring and A/B analysis read these fields; monitoring's served
    score drift reads ``scores``, parallel to ``items``)."""
    return {
        "experiment": experiment,
        "experiment_version": experiment_version,
        "error": error,
        "device": device,
        "country": country,
        "request_id": request_id,
        "user_id": user_id,
        "items": items,
        "scores": scores,
        "positions": list(range(1, len(items) + 1)),
        "variant": variant,
        "model_version": model_version,
        "latency_ms": round(latency_ms, 3),
        "degraded": degraded,
        "ts": datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
    }


class ExposureLog:
    """Bounded queue → Kafka. ``connect()`` returns a kafka-python producer or raises when the broker is
    unreachable; it is retried every few seconds while records wait (and overflow)."""

    def __init__(self, topic: str, capacity: int, connect: Callable[[], Any]) -> None:
        self.topic = topic
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=capacity)
        self._connect = connect
        self._producer: Any = None
        self._thread: threading.Thread | None = None
        self.dropped = 0
        self.sent = 0
        #: How often each item was shown by this worker since it started (catalog coverage of what is
        #: served, on the analyst pages), and in how many answers.
        self.shown: Counter[str] = Counter()
        self.answers = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="aisle-exposures", daemon=True)
        self._thread.start()

    def log(self, record: dict[str, Any]) -> bool:
        """Queue one record; False (and counted) when the queue is full. Never blocks."""
        self.shown.update(record["items"])
        self.answers += 1
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1
            EXPOSURES_DROPPED.inc()
            return False
        return True

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Hand what is queued to Kafka (within ``timeout_s``), then close the producer."""
        if self._thread is None:
            return
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=timeout_s)
        self._thread.join(timeout_s)
        self._thread = None

    def _run(self) -> None:
        """Wake at most every ``DRAIN_PAUSE_S``, hand everything queued to the producer, sleep again: one
        wake-up per pause instead of one per answer, so this thread takes the GIL from the request path
        ~50 times a second rather than once per response."""
        pending: list[Any] = []
        while True:
            if not pending:
                pending.append(self._queue.get())
            with contextlib.suppress(queue.Empty):
                while len(pending) < DRAIN_MAX:
                    pending.append(self._queue.get_nowait())
            stop = _STOP in pending
            if stop:
                pending = pending[: pending.index(_STOP)]
            if pending and self._producer is None and not self._reconnect():
                if stop:
                    break
                time.sleep(RETRY_S)
                continue
            handed = 0
            for record in pending:
                try:
                    value = json.dumps(record, separators=(",", ":")).encode()
                    self._producer.send(self.topic, value=value, key=str(record.get("user_id", "")).encode())
                except BufferError:  # the producer's own queue is full (broker slow or away): wait, keep all
                    break
                except Exception as exc:  # broker gone mid-stream: reconnect, keep this record and the rest
                    log.warning("exposure log: Kafka send failed (%s); reconnecting", exc)
                    self._close()
                    break
                handed += 1
            del pending[:handed]
            self.sent += handed
            EXPOSURES_SENT.inc(handed)
            if stop:
                break
            time.sleep(DRAIN_PAUSE_S)
        self._close(flush=True)

    def _reconnect(self) -> bool:
        try:
            self._producer = self._connect()
        except Exception as exc:
            log.warning("exposure log: no Kafka broker (%s); records queue up to the buffer's size", exc)
            self._producer = None
            return False
        return True

    def _close(self, flush: bool = False) -> None:
        producer, self._producer = self._producer, None
        if producer is None:
            return
        try:
            if flush:
                producer.flush(timeout=5)
            producer.close(timeout=1 if flush else 0)
        except Exception:
            log.debug("exposure producer close failed", exc_info=True)


class RdKafkaSender:
    """What :class:`ExposureLog` asks of a producer (``send``, ``flush``, ``close``), over confluent-kafka's
    librdkafka ``Producer``: about 20 µs of the worker's CPU per record where kafka-python costs ~120 µs,
    and its network thread is C, outside the GIL the request path needs (``bench/bench_serving.py``).

    ``send`` never blocks: a full local queue raises ``BufferError`` (the log keeps the records and tries
    again after its pause). A record librdkafka reports as not delivered (broker away past
    ``message.timeout.ms``, topic gone with a restarted broker) is counted in ``undelivered`` and in
    ``aisle_exposures_dropped``, and the next ``send`` raises ``ConnectionError`` so that the log builds a
    new producer (which makes sure the topic exists again); records still inside the old one are counted
    as dropped when it is closed."""

    def __init__(self, producer: Any) -> None:
        self._producer = producer
        self.undelivered = 0
        self._failing: Any = None

    def send(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        if self._failing is not None:
            raise ConnectionError(f"records not delivered ({self._failing})")
        self._producer.produce(topic, value, key, on_delivery=self._delivered)
        self._producer.poll(0)  # serve delivery reports of earlier records; returns at once

    def _delivered(self, error: Any, message: Any) -> None:
        if error is None:
            return
        if self._failing is None:
            log.warning("exposure log: a record was not delivered (%s); reconnecting", error)
        self._failing = error
        self._drop(1)

    def _drop(self, n: int) -> None:
        self.undelivered += n
        EXPOSURES_DROPPED.inc(n)

    def flush(self, timeout: float) -> None:
        self._producer.flush(timeout)

    def close(self, timeout: float = 0) -> None:
        left = self._producer.flush(timeout)
        if left:
            log.warning("exposure log: %d record(s) still queued when the producer was closed", left)
            self._drop(left)
