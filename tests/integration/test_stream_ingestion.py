"""The Kafka stream path end to end, against the real embedded Tansu broker.

Events are produced with the project's own producer, consumed by ``consume_stream`` (in-process or as
the ``aisle ingest stream`` command) and checked in the lake and the quarantine: exact counts, unique
event ids, reconciled summaries. The crash test kills a real consumer process with SIGKILL; the outage
test kills the broker under a running consumer and brings it back on the same port.

Tests share one broker (each with its own topic, consumer group and AISLE_HOME) except the outage
test, which needs a broker of its own to kill.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pytest

from aisle.app import services
from aisle.core.settings import Settings, load_settings
from ingestion.lake import EventLake, Quarantine
from ingestion.pipeline import IngestCounts, Ingester
from ingestion.stream import StopFlag, consume_stream, events_to_json_lines, produce_messages
from ingestion.synthetic.shop import Shop, ShopConfig, generate_shop

pytestmark = pytest.mark.integration

AISLE_BIN = Path(sys.executable).with_name("aisle")


# ----------------------------------------------------------------------------- helpers and fixtures


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One embedded Tansu broker (no Redis) for the module; its bootstrap address."""
    home = tmp_path_factory.mktemp("stream-broker")
    owner = load_settings(home=home, profile="embedded", redis_url=None, kafka_bootstrap=None)
    with services.embedded_services(owner, redis=False) as summary:
        assert summary["kafka"]["started"] and summary["kafka"]["ok"]
        yield str(summary["kafka"]["bootstrap"])


@pytest.fixture(scope="module")
def shop() -> Shop:
    return generate_shop(ShopConfig(users=200, items=60, days=5, seed=1))


def stream_settings(home: Path, bootstrap: str, **overrides: Any) -> Settings:
    """Settings on a private home, a private topic and a private consumer group of ``bootstrap``."""
    tag = uuid.uuid4().hex[:10]
    return load_settings(
        home=home,
        profile="embedded",
        redis_url=None,
        kafka_bootstrap=bootstrap,
        events_topic=f"events-{tag}",
        consumer_group=f"ingest-{tag}",
        **overrides,
    )


def load_catalog(settings: Settings, shop: Shop) -> None:
    summary = Ingester(settings).ingest_catalog(shop.catalog, "catalog")
    assert summary["accepted"] == shop.catalog.num_rows and summary["quarantined"] == 0


def assert_reconciles(summary: dict[str, Any]) -> None:
    assert summary["read"] == summary["accepted"] + summary["duplicates"] + summary["quarantined"], summary


def lake_ids(settings: Settings) -> list[str]:
    ids: list[str] = EventLake(settings.paths.lake).read()["event_id"].to_pylist()
    return ids


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 0.05) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(poll_s)


def event(template: dict[str, Any], **changes: Any) -> bytes:
    """One wire message: a copy of a good event (ISO timestamp) with some fields changed or removed."""
    row = {**template, **changes}
    return json.dumps({k: v for k, v in row.items() if v is not _DROP}).encode()


_DROP = object()


def child_env(**aisle: str) -> dict[str, str]:
    """The test's environment without any AISLE_* variable, plus the given ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AISLE_")}
    env.update({f"AISLE_{k.upper()}": v for k, v in aisle.items()})
    return env


# ----------------------------------------------------------------------------- 1. exactly once


def test_good_events_land_exactly_once(tmp_path: Path, broker: str, shop: Shop) -> None:
    settings = stream_settings(tmp_path / "aisle", broker)
    load_catalog(settings, shop)
    lines = events_to_json_lines(shop.events)
    n = len(lines)
    # The same event twice on the wire (a producer retry, say) must still land once.
    resent = lines[:50]
    sent = produce_messages(settings, lines + resent)
    assert sent["produced"] == n + 50

    summary = consume_stream(settings, max_events=n + 50, max_seconds=45)

    assert summary["read"] == n + 50
    assert summary["accepted"] == n
    assert summary["duplicates"] == 50
    assert summary["quarantined"] == 0 and summary["refused_batches"] == 0
    assert_reconciles(summary)
    assert summary["batches"] >= 1 and summary["group"] == settings.consumer_group
    lake = EventLake(settings.paths.lake)
    assert lake.count() == n
    ids = lake_ids(settings)
    assert len(set(ids)) == n
    assert set(ids) == set(shop.events["event_id"].to_pylist())
    assert Quarantine(settings.paths.quarantine).read().num_rows == 0
    # The lake holds the events as produced, typed (microsecond UTC timestamps survive the wire).
    stored = lake.read().sort_by("event_id")
    original = shop.events.sort_by("event_id")
    assert stored["ts"].to_pylist() == original["ts"].to_pylist()
    assert stored["item_id"].to_pylist() == original["item_id"].to_pylist()


# ----------------------------------------------------------------------------- 2. replay


def test_replayed_events_add_nothing(tmp_path: Path, broker: str, shop: Shop) -> None:
    settings = stream_settings(tmp_path / "aisle", broker)
    load_catalog(settings, shop)
    lines = events_to_json_lines(shop.events)
    n = len(lines)
    produce_messages(settings, lines)
    first = consume_stream(settings, max_events=n, max_seconds=45)
    assert (first["read"], first["accepted"], first["duplicates"]) == (n, n, 0)
    lake = EventLake(settings.paths.lake)
    parts_before = lake.parts()
    assert lake.count() == n

    # The same events produced again: the group's committed offsets skip the first copy, and every
    # event of the second copy is recognised by the lake.
    produce_messages(settings, lines)
    second = consume_stream(settings, max_events=n, max_seconds=45)
    assert second["read"] == n
    assert second["accepted"] == 0 and second["duplicates"] == n and second["quarantined"] == 0
    assert_reconciles(second)

    # A new consumer group re-reads the whole topic from the start (both copies): still nothing new.
    fresh_group = settings.model_copy(update={"consumer_group": settings.consumer_group + "-again"})
    third = consume_stream(fresh_group, max_events=2 * n, max_seconds=45)
    assert third["read"] == 2 * n
    assert third["accepted"] == 0 and third["duplicates"] == 2 * n
    assert_reconciles(third)

    assert lake.count() == n
    assert len(set(lake_ids(settings))) == n
    assert lake.parts() == parts_before  # not even an empty part was written


# ----------------------------------------------------------------------------- 3. bad messages


def test_bad_messages_are_quarantined_with_their_reason(tmp_path: Path, broker: str, shop: Shop) -> None:
    # Every bad message is judged on its own: no batch refusal, whatever the micro-batch boundaries.
    settings = stream_settings(tmp_path / "aisle", broker, max_failure_rate=1.0)
    load_catalog(settings, shop)
    good_lines = events_to_json_lines(shop.events.slice(0, 100))
    template = json.loads(good_lines[0])
    future = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    long_id = "bad-long-" + "x" * 10_000
    bad: dict[str, tuple[bytes, str]] = {
        # marker in the quarantined row -> (message, expected words in the reason)
        "bad-malformed": (b'{"event_id": "bad-malformed", "user_id": "u1", ', "malformed JSON"),
        "bad-utf8": (b'{"event_id": "bad-utf8", "user_id": "u\xff\xfe1"}', "not UTF-8"),
        "bad-array": (b'["bad-array", 1, 2]', "expected an object, got list"),
        "bad-type": (
            event(template, event_id="bad-type", event_type="teleport"),
            "event_type not in allowed",
        ),
        "bad-rating": (
            event(template, event_id="bad-rating", event_type="rating", value=9),
            "value out of range 1..5 for rating",
        ),
        "bad-future": (event(template, event_id="bad-future", ts=future), "ts in the future"),
        "bad-long-": (event(template, event_id=long_id), "event_id"),
        "bad-no-user": (event(template, event_id="bad-no-user", user_id=_DROP), "user_id is null"),
        "bad-item": (event(template, event_id="bad-item", item_id="i99999"), "item_id not in catalog"),
        # Two JSON objects in one message: one message must stay one row (or one rejection).
        "bad-two": (b'{"event_id": "bad-two"} {"event_id": "bad-two-b"}', "malformed JSON"),
    }
    empty = b""  # a blank message is rejected with a reason, never skipped
    # Controls: a valid rating and a timestamp just inside the allowed clock skew are good events.
    near_now = (datetime.now(UTC) + timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    controls = [
        event(template, event_id="ok-rating", event_type="rating", value=4),
        event(template, event_id="ok-now", ts=near_now),
    ]
    good = good_lines + controls
    messages = good[:50] + [m for m, _ in bad.values()] + [empty] + good[50:]
    total = len(messages)
    produce_messages(settings, messages)

    summary = consume_stream(settings, max_events=total, max_seconds=45)

    assert summary["read"] == total
    assert summary["accepted"] == len(good)
    assert summary["quarantined"] == len(bad) + 1
    assert summary["duplicates"] == 0 and summary["refused_batches"] == 0
    assert_reconciles(summary)

    ids = lake_ids(settings)
    assert len(ids) == len(set(ids)) == len(good)
    assert {"ok-rating", "ok-now"} <= set(ids)
    assert not [i for i in ids if i.startswith("bad-")]

    quarantined = Quarantine(settings.paths.quarantine).read()
    assert quarantined.num_rows == len(bad) + 1
    assert set(quarantined["source"].to_pylist()) == {f"kafka:{settings.events_topic}"}
    rows = list(zip(quarantined["row"].to_pylist(), quarantined["reason"].to_pylist(), strict=True))
    assert [reason for row, reason in rows if not row] == ["empty message"]
    for marker, (_, expected) in bad.items():
        matches = [reason for row, reason in rows if row and marker in row]
        assert len(matches) == 1, f"{marker}: {len(matches)} quarantined rows, expected 1"
        assert expected in matches[0], f"{marker}: reason {matches[0]!r} does not mention {expected!r}"
    long_reason = next(reason for row, reason in rows if long_id in (row or ""))
    assert "128 chars" in long_reason
    # The stage tells whether the message was not even a JSON object or failed a check.
    read_stage = {"bad-malformed", "bad-utf8", "bad-array", "bad-two"}
    for row, stage in zip(quarantined["row"].to_pylist(), quarantined["stage"].to_pylist(), strict=True):
        unreadable = not row or any(marker in row for marker in read_stage)
        assert stage == ("read" if unreadable else "validate"), (row[:80] if row else row, stage)

    # The same messages again: quarantine and lake both recognise every one of them.
    produce_messages(settings, messages)
    again = consume_stream(settings, max_events=total, max_seconds=45)
    assert (again["read"], again["accepted"], again["quarantined"]) == (total, 0, 0)
    assert again["duplicates"] == total
    assert Quarantine(settings.paths.quarantine).read().num_rows == len(bad) + 1
    assert EventLake(settings.paths.lake).count() == len(good)


def test_a_message_holding_two_events_is_one_rejection(tmp_path: Path, broker: str, shop: Shop) -> None:
    """A message with two valid JSON objects side by side, in a micro-batch of otherwise good messages
    (the fast Arrow path), is rejected as one malformed message; it must not stop the stream."""
    settings = stream_settings(tmp_path / "aisle", broker)
    load_catalog(settings, shop)
    good = events_to_json_lines(shop.events.slice(0, 100))
    template = json.loads(good[0])
    two = event(template, event_id="two-a") + b" " + event(template, event_id="two-b")
    produce_messages(settings, [*good[:50], two, *good[50:]])

    summary = consume_stream(settings, max_events=101, max_seconds=45)

    assert (summary["read"], summary["accepted"], summary["quarantined"]) == (101, 100, 1)
    assert_reconciles(summary)
    quarantined = Quarantine(settings.paths.quarantine).read()
    assert quarantined["row"].to_pylist() == [two.decode()]
    assert quarantined["reason"][0].as_py().startswith("malformed JSON")
    ids = lake_ids(settings)
    assert len(set(ids)) == len(ids) == 100 and not {"two-a", "two-b"} & set(ids)


# ----------------------------------------------------------------------------- 4. crash safety


# Runs the real `aisle ingest stream`, but SIGKILLs itself inside the second offset commit: the second
# micro-batch is then durably in the lake while its offsets are not committed, the window that forces
# a replay. (A kill from outside rarely hits that window: the commit follows the write within a ms.)
DIE_BEFORE_SECOND_COMMIT = """
import os, signal, sys
from kafka import KafkaConsumer
real_commit = KafkaConsumer.commit
commits = []
def commit(self, *args, **kwargs):
    commits.append(1)
    if len(commits) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return real_commit(self, *args, **kwargs)
KafkaConsumer.commit = commit
from aisle.app.cli import main
sys.argv = ["aisle", "ingest", "stream", "--max-seconds", "120"]
main()
"""


def committed_total(settings: Settings) -> int:
    """The group's committed offsets on the events topic, summed over partitions (asked of the broker)."""
    from kafka import KafkaConsumer
    from kafka.structs import TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=str(settings.kafka_bootstrap),
        group_id=settings.consumer_group,
        enable_auto_commit=False,
    )
    try:
        partitions = sorted(consumer.partitions_for_topic(settings.events_topic) or ())
        return sum(consumer.committed(TopicPartition(settings.events_topic, p)) or 0 for p in partitions)
    finally:
        consumer.close()


def test_sigkilled_consumer_loses_and_doubles_nothing(tmp_path: Path, broker: str) -> None:
    total, batch = 5_000, 200
    big = generate_shop(ShopConfig(users=2_000, items=200, days=10, seed=2))
    events = big.events.sort_by("ts").slice(0, total)
    assert events.num_rows == total and pc.count_distinct(events["event_id"]).as_py() == total
    settings = stream_settings(tmp_path / "aisle", broker, micro_batch_max_events=batch)
    Ingester(settings).ingest_catalog(big.catalog, "catalog")
    lake = EventLake(settings.paths.lake)
    env = child_env(
        home=str(settings.paths.home),
        profile="embedded",
        kafka_bootstrap=broker,
        events_topic=settings.events_topic,
        consumer_group=settings.consumer_group,
        micro_batch_max_events=str(batch),
    )

    def start(argv: list[str], name: str) -> tuple[subprocess.Popen[bytes], Path]:
        log_path = tmp_path / f"{name}.log"
        with log_path.open("wb") as log_file:
            proc = subprocess.Popen(
                argv,
                env=env,
                cwd=tmp_path,  # no stray .env from the checkout
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        return proc, log_path

    def assert_parts_whole() -> None:
        """Whatever a kill interrupted, only whole, renamed parts are visible; temporaries are hidden."""
        for part in lake.parts():
            assert part.name.startswith("part-") and part.suffix == ".parquet", part
        leftovers = sorted(p.name for p in lake.root.rglob("*.tmp"))
        assert all(name.startswith(".") for name in leftovers), leftovers
        assert lake.read().num_rows == lake.count()  # every visible part is readable

    # Everything is on the topic before the consumer starts, so it consumes flat out (25 micro-batches
    # back to back) and the kill lands in the middle of that work, not in an idle wait.
    assert produce_messages(settings, events_to_json_lines(events))["produced"] == total

    # 1. `aisle ingest stream`, SIGKILLed from outside once a fifth of the events are in the lake.
    first, first_log = start([str(AISLE_BIN), "ingest", "stream", "--max-seconds", "120"], "first")
    try:
        wait_for(lambda: lake.count() >= 1_000 or first.poll() is not None, 60, "1000 events", poll_s=0.005)
        assert first.poll() is None, f"consumer exited early:\n{first_log.read_text()[-3000:]}"
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=10) == -signal.SIGKILL
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(timeout=10)
    after_first = lake.count()
    assert 1_000 <= after_first < total, f"the kill did not land mid-stream ({after_first} of {total})"
    assert_parts_whole()

    # 2. A consumer that dies (SIGKILL) after writing its second micro-batch, before committing it.
    second, second_log = start([sys.executable, "-c", DIE_BEFORE_SECOND_COMMIT], "second")
    try:
        code = second.wait(timeout=60)
    finally:
        if second.poll() is None:
            second.kill()
            second.wait(timeout=10)
    assert code == -signal.SIGKILL, f"exit {code}:\n{second_log.read_text()[-3000:]}"
    after_second = lake.count()
    assert after_first < after_second <= after_first + 2 * batch
    assert_parts_whole()
    # Each partition's lake rows are a prefix of its log, so what the lake holds beyond the group's
    # committed offsets is exactly what consumer 2 wrote and never committed (a micro-batch may close
    # short of `batch` when a fetch returns fewer records, so count it rather than assume it).
    uncommitted = after_second - committed_total(settings)
    assert 0 < uncommitted <= batch, (after_second, uncommitted)

    # 3. A consumer in the same group resumes from the last committed offsets until the lake is full.
    stop = StopFlag()

    def stop_when_full(_totals: IngestCounts) -> None:
        if lake.count() >= total:
            stop.event.set()

    resumed = consume_stream(settings, max_seconds=60, stop=stop, progress=stop_when_full)
    assert stop.event.is_set(), f"the lake never reached {total}: {lake.count()} after {resumed}"
    assert_reconciles(resumed)
    assert resumed["accepted"] == total - after_second
    assert resumed["quarantined"] == 0
    # Exactly the uncommitted second batch of consumer 2 came round again, and the lake recognised it.
    assert resumed["duplicates"] == uncommitted

    ids = lake_ids(settings)
    assert len(ids) == total and len(set(ids)) == total
    assert set(ids) == set(events["event_id"].to_pylist())
    assert Quarantine(settings.paths.quarantine).read().num_rows == 0
    assert_parts_whole()


# ----------------------------------------------------------------------------- 5. broker outage


def test_broker_outage_is_logged_survived_and_recovered(
    tmp_path: Path, shop: Shop, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(
        home=tmp_path / "aisle", profile="embedded", redis_url=None, kafka_bootstrap=None
    )
    stop = StopFlag()
    outcome: dict[str, Any] = {}
    up = services.services_up(settings, redis=False)
    try:
        port, pid = int(up["kafka"]["bootstrap"].rsplit(":", 1)[1]), int(up["kafka"]["pid"])
        load_catalog(settings, shop)
        lines = events_to_json_lines(shop.events)
        first, rest = lines[:300], lines[300:]
        lake = EventLake(settings.paths.lake)
        caplog.set_level(logging.WARNING, logger="aisle.stream")

        def run() -> None:
            try:
                outcome["summary"] = consume_stream(settings, stop=stop, max_seconds=80)
            except BaseException as exc:  # reported by the test below
                outcome["error"] = exc

        consumer = threading.Thread(target=run, daemon=True)
        consumer.start()
        produce_messages(settings, first)
        wait_for(lambda: lake.count() == len(first), 30, "the events sent before the outage", poll_s=0.1)

        def stream_warnings() -> list[str]:
            return [r.getMessage() for r in caplog.records if r.name == "aisle.stream"]

        # The broker crashes.
        os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)  # it is our child (started above); reap it
        wait_for(lambda: any("unreachable" in m for m in stream_warnings()), 15, "the outage warning")
        cpu0, wall0, warned0 = time.process_time(), time.monotonic(), len(stream_warnings())
        time.sleep(5)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        assert consumer.is_alive(), outcome
        assert "error" not in outcome
        assert cpu < 0.5 * wall, (
            f"the consumer spins while the broker is away: {cpu:.1f} s CPU in {wall:.1f} s"
        )
        assert len(stream_warnings()) - warned0 <= 2, stream_warnings()  # no log flood
        unreachable = next(m for m in stream_warnings() if "unreachable" in m)
        assert f"broker 127.0.0.1:{port} unreachable" in unreachable
        assert "nothing is lost" in unreachable
        assert lake.count() == len(first)

        # The broker comes back on the same port, empty (memory storage): topic and offsets are gone.
        back = services.services_up(settings, redis=False, kafka_port=port)
        assert back["kafka"]["started"] and back["kafka"]["bootstrap"] == f"127.0.0.1:{port}"
        produce_messages(settings, rest)  # recreates the topic
        wait_for(lambda: lake.count() == len(lines), 40, "the events sent after the outage", poll_s=0.2)
        assert any("is back" in m for m in stream_warnings()), stream_warnings()
        stop.event.set()
        consumer.join(timeout=30)
        assert not consumer.is_alive()
    finally:
        stop.event.set()  # never leave the consumer thread running against a dead broker
        services.services_down(settings)

    assert "error" not in outcome, outcome.get("error")
    summary = outcome["summary"]
    assert_reconciles(summary)
    assert summary["accepted"] == len(lines) and summary["quarantined"] == 0
    ids = lake_ids(settings)
    assert len(ids) == len(set(ids)) == len(lines)


# ----------------------------------------------------------------------------- 6. no broker at all


@pytest.mark.parametrize("command", [["ingest", "stream"], ["data", "stream", "--path", "events.jsonl"]])
def test_cli_without_a_broker_fails_in_one_sentence(tmp_path: Path, command: list[str]) -> None:
    dead = services.free_port()
    (tmp_path / "events.jsonl").write_text(
        '{"event_id":"e1","event_type":"view","user_id":"u1","item_id":"i1","ts":"2026-01-05T00:00:00Z"}\n'
    )
    env = child_env(home=str(tmp_path / "aisle"), profile="embedded", kafka_bootstrap=f"127.0.0.1:{dead}")
    started = time.monotonic()
    done = subprocess.run(
        [str(AISLE_BIN), *command], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert time.monotonic() - started < 30
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""  # no JSON summary: the job did not run
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert errors == [
        f"error: no Kafka broker answers at 127.0.0.1:{dead}; run `aisle services up` or set "
        "AISLE_KAFKA_BOOTSTRAP"
    ], done.stderr
    assert not (tmp_path / "aisle" / "lake" / "events").exists()
