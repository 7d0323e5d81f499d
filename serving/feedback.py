"""Feedback events → Kafka ``events``, through an on-disk outbox so none is lost or sent twice.

``/feedback`` appends the validated events to this worker's spool file and fsyncs it before answering
202, so an accepted event survives a broker outage and a crash of the worker. One thread per worker
sends the spool in order and records, after Kafka acknowledged them, how far it got (an offset file
written atomically). A broker that is down is retried every few seconds; when it is back the sender
resumes at the recorded offset, so each event reaches the topic once. The producer never retries on its
own (``retries=0``): a batch in flight when the broker dies fails and is sent again, whole, by a fresh
producer after the topic is ensured, never silently into a restarted broker. (If the broker fails in the
middle of a batch, its acknowledged head is not sent twice, but a record that reached the broker just
before its acknowledgement was lost can be; the lake deduplicates by ``event_id``.)

A spool left by a worker that died (its file lock is free) is adopted by the next worker that starts
and delivered like its own. Files live under ``$AISLE_HOME/serving/outbox``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import pyarrow as pa

from serving.metrics import FEEDBACK_DELIVERED, FEEDBACK_EVENTS

log = logging.getLogger("bentoml.aisle.feedback")

BATCH: Final = 500
RETRY_S: Final = 2.0
#: A producer idle this long is replaced before the next send. Reconnecting makes sure the topic exists:
#: a broker restarted meanwhile may have forgotten it (Tansu's memory storage does, and then acknowledges
#: records for the missing topic without keeping them).
RECONNECT_AFTER_IDLE_S: Final = 5.0
#: A fully delivered own spool larger than this is emptied (the offset returns to 0).
COMPACT_BYTES: Final = 1 << 20
SPOOL: Final = ".spool"
OFFSET: Final = ".offset"


def wire_messages(events: pa.Table) -> list[tuple[bytes | None, bytes]]:
    """(key, value) per typed event in the topic's wire format (the producer's, keyed by user)."""
    from ingestion.stream import events_to_json_lines

    keys = [u.encode() if u else None for u in events["user_id"].to_pylist()]
    return list(zip(keys, events_to_json_lines(events), strict=True))


@dataclass
class _Spool:
    path: Path
    handle: IO[bytes]
    own: bool

    @property
    def offset_path(self) -> Path:
        return self.path.with_suffix(OFFSET)

    def offset(self) -> int:
        try:
            return int(self.offset_path.read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    def set_offset(self, value: int) -> None:
        tmp = self.offset_path.with_suffix(".tmp")
        tmp.write_text(str(value))
        os.replace(tmp, self.offset_path)


def _lock(path: Path) -> IO[bytes] | None:
    """Open ``path`` for appending and take its exclusive lock; None when another process holds it."""
    handle = open(path, "ab")  # noqa: SIM115 - held open for the life of the outbox
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


class Outbox:
    """This worker's spool plus any orphaned ones, and the thread that delivers them.

    ``connect()`` returns a kafka-python producer ready for ``topic`` or raises when the broker is away.
    """

    def __init__(self, directory: Path, topic: str, connect: Callable[[], Any]) -> None:
        self.directory = directory
        self.topic = topic
        self._connect = connect
        directory.mkdir(parents=True, exist_ok=True)
        own = directory / f"worker-{os.getpid()}-{uuid.uuid4().hex[:8]}{SPOOL}"
        handle = _lock(own)
        if handle is None:  # a fresh random name cannot be held by anyone else
            raise RuntimeError(f"cannot lock the feedback spool {own}")
        self._own = _Spool(own, handle, own=True)
        self._adopted: list[_Spool] = []
        self._lock = threading.Lock()  # the writer and the sender share the own spool
        self._wake = threading.Condition(self._lock)
        self._stop = False
        self._thread: threading.Thread | None = None
        self._producer: Any = None
        self.connected = False
        self._warned = False
        self._last_ok = time.monotonic()
        self._written = self._own.handle.tell()
        self._delivered_to = 0

    # ------------------------------------------------------------------ writer side (request path)

    def put(self, messages: list[tuple[bytes | None, bytes]]) -> int:
        """Append and fsync; returns the spool position the sender must reach for these to be out."""
        lines = b"".join(
            json.dumps({"key": k.decode() if k else None, "value": v.decode()}).encode() + b"\n"
            for k, v in messages
        )
        with self._wake:
            self._own.handle.write(lines)
            self._own.handle.flush()
            os.fsync(self._own.handle.fileno())
            self._written = self._own.handle.tell()
            self._wake.notify_all()
            FEEDBACK_EVENTS.inc(len(messages))
            return self._written

    def wait_delivered(self, position: int, timeout_s: float) -> bool:
        """Whether the sender got past ``position`` of the own spool within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        with self._wake:
            while self._delivered_to < position:
                left = deadline - time.monotonic()
                if left <= 0 or not self.connected:
                    return False
                self._wake.wait(left)
            return True

    def pending(self) -> int:
        """Events written but not yet acknowledged by Kafka, own spool and adopted ones."""
        total = 0
        for spool in [self._own, *self._adopted]:
            with contextlib.suppress(OSError), open(spool.path, "rb") as fh:
                fh.seek(spool.offset())
                total += sum(1 for line in fh if line.strip())
        return total

    # ------------------------------------------------------------------ sender side

    def start(self) -> None:
        self._adopt_orphans()
        self._delivered_to = self._own.offset()
        self._thread = threading.Thread(target=self._run, name="aisle-feedback", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Deliver what can be delivered within ``timeout_s``; the rest stays spooled for the next start."""
        with self._wake:
            self._stop = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._close_producer()
        for spool in [self._own, *self._adopted]:
            spool.handle.close()

    def _adopt_orphans(self) -> None:
        for path in sorted(self.directory.glob(f"*{SPOOL}")):
            if path == self._own.path:
                continue
            handle = _lock(path)
            if handle is not None:
                log.info("adopting feedback spool %s left by a stopped worker", path.name)
                self._adopted.append(_Spool(path, handle, own=False))

    def _run(self) -> None:
        self._ensure_producer()  # connect before the first event, so it is not kept waiting
        while True:
            with self._wake:
                while not self._stop and self._delivered_to >= self._written and not self._adopted:
                    self._wake.wait(1.0)
                if self._stop and (self._delivered_to >= self._written or not self.connected):
                    return
            if self._producer is not None and time.monotonic() - self._last_ok > RECONNECT_AFTER_IDLE_S:
                self._close_producer()  # reconnecting re-creates the topic a restarted broker forgot
            if not self._ensure_producer():
                self._sleep(RETRY_S)
                continue
            for spool in [*self._adopted, self._own]:
                if not self._drain(spool):
                    self._close_producer()
                    self._sleep(RETRY_S)
                    break

    def _sleep(self, seconds: float) -> None:
        with self._wake:
            if not self._stop:
                self._wake.wait(seconds)

    def _ensure_producer(self) -> bool:
        if self._producer is not None:
            return True
        try:
            self._producer = self._connect()
        except Exception as exc:
            if self.connected or not self._warned:
                log.warning("feedback: Kafka unreachable (%s); events stay spooled until it is back", exc)
                self._warned = True
            self.connected = False
            return False
        if not self.connected:
            log.info("feedback: Kafka reachable; delivering spooled events")
        self.connected = True
        self._last_ok = time.monotonic()
        return True

    def _close_producer(self) -> None:
        producer, self._producer = self._producer, None
        self.connected = False
        if producer is not None:
            with contextlib.suppress(Exception):
                producer.close(timeout=0)

    def _drain(self, spool: _Spool) -> bool:
        """Send everything after the spool's offset; False when the broker failed (retry later)."""
        offset = spool.offset()
        with open(spool.path, "rb") as fh:
            fh.seek(offset)
            while True:
                batch, ends = _read_batch(fh)
                if not batch:
                    break
                sent = self._send(batch)
                if sent == len(batch):
                    self._last_ok = time.monotonic()
                if sent:
                    offset = ends[sent - 1]
                    spool.set_offset(offset)
                    FEEDBACK_DELIVERED.inc(sent)
                    if spool.own:
                        with self._wake:
                            self._delivered_to = offset
                            self._wake.notify_all()
                if sent < len(batch):
                    return False
        if not spool.own:
            self._retire(spool)
        elif offset >= COMPACT_BYTES:
            self._compact()
        return True

    def _send(self, batch: list[dict[str, Any] | None]) -> int:
        """How many of ``batch``, from the start, Kafka acknowledged."""
        futures: list[Any] = []
        try:
            for record in batch:
                if record is None:  # an unreadable line: counted as handled, never retried
                    futures.append(None)
                    continue
                key = record["key"].encode() if record.get("key") else None
                futures.append(self._producer.send(self.topic, value=record["value"].encode(), key=key))
            self._producer.flush(timeout=10)
        except Exception as exc:
            log.warning("feedback: Kafka send failed (%s); will retry", exc)
        done = 0
        for future in futures:
            if future is not None and (not future.is_done or future.failed()):
                break
            done += 1
        return done

    def _retire(self, spool: _Spool) -> None:
        spool.handle.close()
        for path in (spool.path, spool.offset_path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self._adopted.remove(spool)
        log.info("feedback spool %s delivered and removed", spool.path.name)

    def _compact(self) -> None:
        with self._wake:
            if self._delivered_to < self._written:
                return
            self._own.handle.truncate(0)
            self._own.handle.seek(0)
            self._own.set_offset(0)
            self._written = self._delivered_to = 0


def _read_batch(fh: IO[bytes]) -> tuple[list[dict[str, Any] | None], list[int]]:
    """Up to BATCH complete lines from ``fh``, with the file position after each; a torn last line
    (a write in progress) is left for the next pass."""
    records: list[dict[str, Any] | None] = []
    ends: list[int] = []
    while len(records) < BATCH:
        start = fh.tell()
        line = fh.readline()
        if not line:
            break
        if not line.endswith(b"\n"):
            fh.seek(start)
            break
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            log.error("feedback spool: skipping an unreadable line at byte %d", start)
            records.append(None)
        ends.append(fh.tell())
    return records, ends
