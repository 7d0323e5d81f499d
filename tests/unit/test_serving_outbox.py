"""The feedback outbox's bookkeeping with a stand-in producer: ordered, exactly once, across outages
and a dead worker's spool. The real broker (stopped and restarted) is in tests/integration/test_serving.py."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from serving.exposures import ExposureLog, exposure_record
from serving.feedback import Outbox


class Sent:
    def __init__(self, ok: bool) -> None:
        self.is_done = True
        self._ok = ok

    def failed(self) -> bool:
        return not self._ok


class Broker:
    """Records what it accepted; ``up`` False makes connecting and sending fail."""

    def __init__(self) -> None:
        self.up = True
        self.records: list[tuple[bytes | None, bytes]] = []

    def connect(self) -> Any:
        if not self.up:
            raise ConnectionError("no broker")
        return self

    def send(self, topic: str, value: bytes, key: bytes | None = None) -> Sent:
        if self.up:
            self.records.append((key, value))
        return Sent(self.up)

    def flush(self, timeout: float) -> None:
        return None

    def close(self, timeout: float = 0) -> None:
        return None


def _messages(n: int, start: int = 0) -> list[tuple[bytes | None, bytes]]:
    return [(b"user", json.dumps({"event_id": f"e{i}"}).encode()) for i in range(start, start + n)]


def _ids(broker: Broker) -> list[str]:
    return [json.loads(v)["event_id"] for _, v in broker.records]


def _wait(predicate: Any, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_delivers_in_order_and_holds_events_while_the_broker_is_away(tmp_path: Path) -> None:
    broker = Broker()
    box = Outbox(tmp_path, "events", broker.connect)
    box.start()
    try:
        assert box.wait_delivered(box.put(_messages(3)), 5)
        broker.up = False
        position = box.put(_messages(2, start=3))
        assert not box.wait_delivered(position, 0.3)
        assert box.pending() == 2
        broker.up = True
        assert _wait(lambda: box.pending() == 0)
        assert _ids(broker) == ["e0", "e1", "e2", "e3", "e4"]  # each once, in order
    finally:
        box.stop()


def test_a_dead_workers_spool_is_adopted_and_delivered_once(tmp_path: Path) -> None:
    broker = Broker()
    broker.up = False
    dead = Outbox(tmp_path, "events", broker.connect)
    dead.put(_messages(4))  # written and fsynced, never sent: the worker dies here
    dead._own.handle.close()  # its lock goes with it
    broker.up = True
    heir = Outbox(tmp_path, "events", broker.connect)
    heir.start()
    try:
        assert _wait(lambda: _ids(broker) == ["e0", "e1", "e2", "e3"])
        assert _wait(lambda: not list(tmp_path.glob(f"{dead._own.path.stem}*")))  # retired once delivered
        heir.put(_messages(1, start=4))
        assert _wait(lambda: _ids(broker) == ["e0", "e1", "e2", "e3", "e4"])
    finally:
        heir.stop()


def test_exposure_log_never_blocks_and_counts_overflow() -> None:
    broker = Broker()
    broker.up = False
    log = ExposureLog("exposures", capacity=3, connect=broker.connect)  # not started: nothing drains
    record = exposure_record("r", "u", ["a", "b"], "champion", "7", 1.5, False)
    started = time.perf_counter()
    accepted = [log.log(record) for _ in range(10)]
    assert time.perf_counter() - started < 0.1
    assert accepted.count(True) == 3 and log.dropped == 7
    assert record["positions"] == [1, 2] and record["latency_ms"] == 1.5


class DropsOnce(Broker):
    """Raises on the ``fail_at``-th send (a broker gone mid-drain), then accepts again."""

    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.fail_at = fail_at
        self.failures = 0

    def send(self, topic: str, value: bytes, key: bytes | None = None) -> Sent:
        if len(self.records) == self.fail_at and not self.failures:
            self.failures += 1
            raise ConnectionError("broker went away")
        return super().send(topic, value, key)


def test_exposure_log_drains_in_order_and_keeps_records_across_a_failed_send() -> None:
    broker = DropsOnce(fail_at=7)
    log = ExposureLog("exposures", capacity=100, connect=broker.connect)
    for i in range(20):  # queued before the thread starts: one drain takes them all
        log.log(exposure_record(f"r{i}", "u", ["a"], "champion", "7", 1.0, False))
    log.start()
    try:
        assert _wait(lambda: len(broker.records) == 20)
        for i in range(20, 30):  # and records logged while it runs
            log.log(exposure_record(f"r{i}", "u", ["a"], "champion", "7", 1.0, False))
        assert _wait(lambda: len(broker.records) == 30)
    finally:
        log.stop()
    assert broker.failures == 1
    assert [json.loads(v)["request_id"] for _, v in broker.records] == [f"r{i}" for i in range(30)]
    assert log.sent == 30 and log.dropped == 0


class FullOnce(Broker):
    """A producer whose local queue is full once (librdkafka's ``BufferError``)."""

    def __init__(self) -> None:
        super().__init__()
        self.full = 1
        self.connects = 0

    def connect(self) -> Any:
        self.connects += 1
        return super().connect()

    def send(self, topic: str, value: bytes, key: bytes | None = None) -> Sent:
        if len(self.records) == 3 and self.full:
            self.full -= 1
            raise BufferError("Local: Queue full")
        return super().send(topic, value, key)


def test_exposure_log_waits_out_a_full_producer_queue_without_reconnecting() -> None:
    broker = FullOnce()
    log = ExposureLog("exposures", capacity=100, connect=broker.connect)
    for i in range(10):
        log.log(exposure_record(f"r{i}", "u", ["a"], "champion", "7", 1.0, False))
    log.start()
    try:
        assert _wait(lambda: len(broker.records) == 10)
    finally:
        log.stop()
    assert broker.full == 0 and broker.connects == 1  # the same producer, nothing lost or resent
    assert [json.loads(v)["request_id"] for _, v in broker.records] == [f"r{i}" for i in range(10)]
