"""A Kafka group member that knows when it got its partitions, what it has made durable, and where the
broker is now. Used by :func:`ingestion.stream.consume_stream`; works unchanged on Apache Kafka.

* **Assignment.** :meth:`wait_for_assignment` polls (which is what drives the group join) until the
  group hands over partitions, keeping any records that arrive meanwhile; clocks start there.
* **Durable offsets.** :meth:`commit` commits exactly the offsets of the batch just written. A commit the
  group refuses (a rebalance after another member died) is kept pending; once the partitions come back
  the records before that offset, already in the lake, are skipped and the commit is retried, so a
  refused commit costs no replay.
* **The broker's current address.** When the broker stops answering, the address is looked up again
  (``AISLE_KAFKA_BOOTSTRAP`` or the services file): a broker restarted on a new port is followed. A
  restarted memory broker has lost what it held; :class:`~ingestion.ledger.Ledger` says how much.
* **Members.** Each consumer leaves a small file under ``$AISLE_HOME/run/consumers`` while it runs, so
  ``aisle ingest status`` can list the group's members where the broker cannot (Tansu).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from typing import TYPE_CHECKING, Any

from aisle.core.errors import ServiceUnavailable
from aisle.core.settings import Settings
from ingestion.kafka_io import broker_reachable, ensure_topic, new_consumer
from ingestion.ledger import Ledger, broker_epoch

if TYPE_CHECKING:
    from ingestion.stream import StopFlag

log = logging.getLogger("aisle.stream")

#: A poll this short that brings nothing means the consumer has caught up: the batch closes.
CAUGHT_UP_MS = 5
WAIT_WARNING_S = 30.0


class GroupConsumer:
    def __init__(self, settings: Settings, stop: StopFlag) -> None:
        from aisle.core.endpoints import kafka_bootstrap

        self.settings = settings
        self.stop = stop
        self.topic = settings.events_topic
        self.group = settings.consumer_group
        self.bootstrap = kafka_bootstrap(settings)
        self.epoch = broker_epoch(settings)
        self.ledger = Ledger(settings)
        self.started = time.perf_counter()
        self.assigned_at: float | None = None
        self.waited_s = 0.0
        self.pending: dict[Any, int] = {}  # partition → offset whose commit the group refused
        self.guard: dict[Any, int] = {}  # partition → records below this offset are in the lake already
        self.partitions: set[int] = set()
        self.buffer: list[Any] = []  # records that arrived while waiting for the assignment
        self.skipped = 0  # records already written by us that a rebalance delivered again
        self.commit_retries = 0
        self.lost = 0  # events a broker restart lost before this group consumed them
        self.moves: list[str] = []
        self.first_at: float | None = None  # when the current batch's first record arrived
        self.fetch_s = 0.0  # how long after its producer's timestamp
        self.member_file = settings.paths.run / "consumers" / f"{os.getpid()}-{id(self)}.json"
        self.outage = Outage(self)
        self._connect()
        self._report_lost()  # a restart before this run started counts too

    # ------------------------------------------------------------------------- connection

    def _connect(self) -> None:
        ensure_topic(self.bootstrap, self.topic)
        self.consumer = new_consumer(
            self.bootstrap, self.topic, self.group, self.settings.micro_batch_max_events
        )

    def follow_broker(self) -> bool:
        """Look the broker's address up again; reconnect when it moved. True when it did."""
        from aisle.core.endpoints import kafka_bootstrap

        try:
            current = kafka_bootstrap(self.settings)
        except ServiceUnavailable:
            return False
        if current == self.bootstrap or not broker_reachable(current):
            return False
        log.warning("broker moved from %s to %s; reconnecting", self.bootstrap, current)
        self.moves.append(current)
        with contextlib.suppress(Exception):
            self.consumer.close(autocommit=False)
        self.bootstrap = current
        self.assigned_at = None
        self._connect()
        self.wait_for_assignment(None)
        return True

    def check_epoch(self) -> None:
        """After an outage: a restarted memory broker lost what it held (the ledger says how much)."""
        epoch = broker_epoch(self.settings)
        if epoch == self.epoch:
            return
        self.epoch = epoch
        self.guard.clear()  # the new broker's offsets start again at 0
        self.pending.clear()
        self._report_lost()

    def _report_lost(self) -> None:
        self.ledger.roll()  # opens the current epoch, keeping the old one as "previous"
        lost = self.ledger.take_lost(self.group, self.topic)
        if lost:
            self.lost += lost
            log.warning(
                "the broker restarted and lost %d event(s) group %s had not consumed", lost, self.group
            )

    # ------------------------------------------------------------------------- assignment

    def wait_for_assignment(self, budget_s: float | None) -> bool:
        """Poll until partitions are assigned (True), the budget runs out or a stop is asked (False)."""
        started = time.perf_counter()
        warned = started
        while not self.consumer.assignment():
            if self.stop.event.is_set():
                break
            now = time.perf_counter()
            if budget_s is not None and now - started >= budget_s:
                break
            if now - warned >= WAIT_WARNING_S:
                warned = now
                log.warning(
                    "no partition assigned to group %s after %.0f s; still waiting", self.group, now - started
                )
            polled = self.consumer.poll(timeout_ms=200, max_records=self.settings.micro_batch_max_events)
            for records in polled.values():
                self.buffer.extend(records)
        self.waited_s += time.perf_counter() - started
        if self.consumer.assignment():
            self.assigned_at = time.perf_counter()
            self._write_member()
            return True
        return False

    def seconds_assigned(self) -> float:
        return time.perf_counter() - (self.assigned_at or self.started)

    def caught_up(self) -> bool:
        """Whether this member has read everything the ledger says was produced to its partitions."""
        produced = self.ledger.produced(self.topic)
        if not produced:
            return True  # nothing known about production (another producer): idle means idle
        for tp in self.consumer.assignment():
            try:
                position = self.consumer.position(tp, timeout_ms=2000)
            except Exception:  # broker away: not caught up, keep waiting within max_seconds
                return False
            if position is not None and position < produced.get(tp.partition, 0):
                return False
        return True

    # ------------------------------------------------------------------------- reading

    def poll_batch(self, cap: int, max_seconds: float, budget_s: float | None = None) -> list[Any]:
        """Collect records until the batch is full (``cap``), ``max_seconds`` pass, the first record has
        waited ``budget_s`` for company, or the consumer has caught up (a short poll brings nothing new):
        a lone event is not held back; under load batches still fill to ``cap``. Records this consumer
        already wrote are dropped. ``first_at`` / ``fetch_s`` tell when the first record arrived and how
        long after its producer's timestamp."""
        self.check_epoch()
        self._retry_pending()
        out: list[Any] = self._fresh(self.buffer[:cap])
        self.buffer = self.buffer[cap:]
        deadline = time.perf_counter() + max_seconds
        self.first_at = time.perf_counter() if out else None
        while len(out) < cap and not self.stop.event.is_set():
            remaining_ms = int((deadline - time.perf_counter()) * 1000)
            if remaining_ms <= 0:
                break
            wait_ms = min(remaining_ms, CAUGHT_UP_MS) if out else remaining_ms
            polled = self.consumer.poll(timeout_ms=wait_ms, max_records=cap - len(out))
            got = 0
            for records in polled.values():
                fresh = self._fresh(records)
                out.extend(fresh)
                got += len(fresh)
            if got and self.first_at is None:
                self.first_at = time.perf_counter()
                self.fetch_s = max(time.time() - out[0].timestamp / 1000.0, 0.0)
                if budget_s is not None:
                    deadline = min(deadline, self.first_at + budget_s)
            if out and not got:
                break
        if out:
            self.outage.after_data()
        else:
            self.outage.after_empty_poll()
        return out

    def _fresh(self, records: list[Any]) -> list[Any]:
        """Drop records a rebalance delivered again although this consumer wrote them (its commit was
        refused); only partitions with such a refused commit are guarded, and only up to its offset."""
        if not self.guard:
            return records
        keep = []
        for record in records:
            tp = _tp(record)
            below = self.guard.get(tp)
            if below is not None and record.offset < below:
                self.skipped += 1
                continue
            if below is not None:
                del self.guard[tp]
            keep.append(record)
        return keep

    # ------------------------------------------------------------------------- committing

    def commit(self, records: list[Any]) -> None:
        """Commit the offsets after ``records`` (already durable in the lake)."""
        offsets: dict[Any, int] = {}
        for record in records:
            tp = _tp(record)
            offsets[tp] = max(offsets.get(tp, 0), record.offset + 1)
        self.partitions.update(tp.partition for tp in offsets)
        self._commit({**self.pending, **offsets})

    def _commit(self, offsets: dict[Any, int]) -> bool:
        from kafka.errors import KafkaError
        from kafka.structs import OffsetAndMetadata

        if not offsets:
            return True
        try:
            self.consumer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in offsets.items()})
        except KafkaError as exc:
            log.warning(
                "offset commit refused (%s); it is retried when the partitions are assigned again, and "
                "the records already written are not read twice",
                type(exc).__name__,
            )
            for tp, o in offsets.items():
                self.pending[tp] = max(self.pending.get(tp, 0), o)
                self.guard[tp] = max(self.guard.get(tp, 0), o)
            return False
        for tp in offsets:
            self.pending.pop(tp, None)
        self.ledger.record_committed(self.group, self.topic, {tp.partition: o for tp, o in offsets.items()})
        return True

    def _retry_pending(self) -> None:
        if not self.pending:
            return
        mine = set(self.consumer.assignment())
        for tp in [tp for tp in self.pending if tp not in mine]:
            self.pending.pop(tp)  # another member owns it now: it re-reads and the lake deduplicates
            self.guard.pop(tp, None)
        retry = {tp: o for tp, o in self.pending.items() if tp in mine}
        if retry:
            self.commit_retries += 1
            if self._commit(retry):
                for tp, o in retry.items():
                    with contextlib.suppress(Exception):
                        if self.consumer.position(tp, timeout_ms=2000) < o:
                            self.consumer.seek(tp, o)

    # ------------------------------------------------------------------------- members and the end

    def _write_member(self) -> None:
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "group": self.group,
            "topic": self.topic,
            "bootstrap": self.bootstrap,
            "partitions": sorted(tp.partition for tp in self.consumer.assignment()),
            "since": time.time(),
        }
        with contextlib.suppress(OSError):
            self.member_file.parent.mkdir(parents=True, exist_ok=True)
            self.member_file.write_text(json.dumps(info))

    def summary(self) -> dict[str, Any]:
        assigned = None if self.assigned_at is None else round(self.assigned_at - self.started, 3)
        return {
            "assigned_after_s": assigned,
            "partitions": sorted(self.partitions) or None,
            "commit_retries": self.commit_retries,
            "skipped_already_written": self.skipped,
            "lost_in_broker_restart": self.lost,
            "bootstrap": self.bootstrap,
        }

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.consumer.close(autocommit=False)
        self.member_file.unlink(missing_ok=True)


def _tp(record: Any) -> Any:
    from kafka.structs import TopicPartition

    return TopicPartition(record.topic, record.partition)


class Outage:
    """Tracks a broker outage so it is reported once when it starts, every 30 s while it lasts, and once
    when it ends. An empty poll is normal when idle; only an unreachable broker counts."""

    REPEAT_S = 30.0

    def __init__(self, member: GroupConsumer) -> None:
        self.member = member
        self.since: float | None = None
        self.logged_at = 0.0

    def after_empty_poll(self) -> None:
        member = self.member
        if broker_reachable(member.bootstrap):
            if self.since is not None:
                self.after_data()
            return
        if member.follow_broker():
            self.after_data()
            return
        now = time.perf_counter()
        if self.since is None:
            self.since = self.logged_at = now
            log.warning(
                "broker %s unreachable; retrying every few seconds (nothing is lost: offsets are "
                "committed only after writes)",
                member.bootstrap,
            )
        elif now - self.logged_at >= self.REPEAT_S:
            self.logged_at = now
            log.warning(
                "broker %s still unreachable after %.0f s; retrying", member.bootstrap, now - self.since
            )
        time.sleep(0.5)

    def after_data(self) -> None:
        if self.since is not None:
            log.warning(
                "broker %s is back after %.1f s; consuming again",
                self.member.bootstrap,
                time.perf_counter() - self.since,
            )
            self.since = None
            self.member.check_epoch()
