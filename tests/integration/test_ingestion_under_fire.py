"""Ingestion under fire (issue #17): every case a hostile but realistic user tried, against the real
broker, lake and quarantine, with its exit code, summary and quarantine content.

Tests that need a broker share one embedded Tansu (each with its own topic and home); the restart tests
start their own. CPU contention is real: busy processes on every core while the consumer runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pytest
from typer.testing import CliRunner

from aisle.app import services
from aisle.app.cli import app
from aisle.core.settings import Settings, get_settings, load_settings
from ingestion.batch import ingest_batch
from ingestion.lake import EventLake, Quarantine
from ingestion.pipeline import Ingester
from ingestion.stream import consume_stream, events_to_json_lines, produce_messages
from ingestion.synthetic.shop import Shop, ShopConfig, generate_shop, write_events

pytestmark = pytest.mark.integration

AISLE_BIN = Path(sys.executable).with_name("aisle")
runner = CliRunner()
STREAM = ("ingest", "stream", "--no-push-features")
POISON = (
    b'{"event_id":"poison-1","event_type":"view","user_id":"u\xe9\xff","item_id":"i00001",'
    b'"ts":"2026-01-06T10:00:00Z"}'
)


# ----------------------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("fire-broker")
    owner = load_settings(home=home, profile="embedded", redis_url=None, kafka_bootstrap=None)
    with services.embedded_services(owner, redis=False) as summary:
        yield str(summary["kafka"]["bootstrap"])


@pytest.fixture(scope="module")
def shop() -> Shop:
    return generate_shop(ShopConfig(users=1000, items=100, days=10, seed=5))


def topic_settings(home: Path, bootstrap: str, **overrides: Any) -> Settings:
    """A private topic on ``bootstrap``; the consumer group stays the default one."""
    return load_settings(
        home=home,
        profile="embedded",
        redis_url=None,
        kafka_bootstrap=bootstrap,
        events_topic=f"events-{uuid.uuid4().hex[:10]}",
        **overrides,
    )


def env_of(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AISLE_")}
    env.update(
        AISLE_HOME=str(settings.paths.home),
        AISLE_PROFILE="embedded",
        AISLE_EVENTS_TOPIC=settings.events_topic,
        AISLE_CONSUMER_GROUP=settings.consumer_group,
    )
    if settings.kafka_bootstrap:
        env["AISLE_KAFKA_BOOTSTRAP"] = settings.kafka_bootstrap
    return env


def run_cli(settings: Settings, *args: str, timeout: float = 120) -> tuple[int, dict[str, Any] | None, str]:
    """`aisle ARGS` as a separate process; (exit code, last JSON line, stderr)."""
    done = subprocess.run(
        [str(AISLE_BIN), *args],
        env=env_of(settings),
        cwd=settings.paths.home.parent,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = done.stdout.strip().splitlines()
    return done.returncode, json.loads(lines[-1]) if lines else None, done.stderr


def last_json(output: str) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return parsed


@contextlib.contextmanager
def busy_cores() -> Iterator[int]:
    """A busy process on every core for the length of the block."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)]
    try:
        yield len(procs)
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait(timeout=10)


def lake_ids(settings: Settings) -> list[str]:
    ids: list[str] = EventLake(settings.paths.lake).read()["event_id"].to_pylist()
    return ids


# ----------------------------------------------------------------------------- 1. poison never blocks


def test_poisoned_message_never_blocks_the_stream(tmp_path: Path, broker: str, shop: Shop) -> None:
    settings = topic_settings(tmp_path / "home", broker)
    good = events_to_json_lines(shop.events.slice(0, 100))
    produce_messages(settings, [*good[:50], POISON, *good[50:]])

    code, summary, err = run_cli(settings, *STREAM, "--max-seconds", "60", "--idle-seconds", "3")
    assert code == 0, err
    assert summary is not None and summary["read"] == 101 and summary["accepted"] == 100
    assert summary["quarantined"] == summary["dead_letters"] == 1
    quarantined = Quarantine(settings.paths.quarantine).read()
    assert quarantined["raw"].to_pylist() == [POISON]  # the exact bytes, not a re-encoding
    assert quarantined["reason"][0].as_py().startswith("not UTF-8")

    again = consume_stream(settings, max_seconds=20, idle_exit_seconds=2)
    assert again["ok"] and again["read"] == 0  # a restart reads nothing twice
    assert len(lake_ids(settings)) == len(set(lake_ids(settings))) == 100
    status = runner_status(settings)
    assert status["dead_letters"] == 1 and status["lag"] == 0
    assert [row["lag"] for row in status["partitions"]] == [0] * len(status["partitions"])


def runner_status(settings: Settings) -> dict[str, Any]:
    code, summary, err = run_cli(settings, "ingest", "status")
    assert code == 0, err
    assert summary is not None and summary["group"] == settings.consumer_group
    assert sum(row["produced"] or 0 for row in summary["partitions"]) > 0
    return summary


def test_poisoned_line_in_a_file_is_quarantined(tmp_path: Path, shop: Shop, cli_home: Path) -> None:
    good = events_to_json_lines(shop.events.slice(0, 40))
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join([*good[:20], POISON, *good[20:]]) + b"\n")
    result = runner.invoke(app, ["ingest", "batch", str(path)])
    assert result.exit_code == 0, result.output
    summary = last_json(result.stdout)
    assert (summary["read"], summary["accepted"], summary["quarantined"]) == (41, 40, 1)
    assert Quarantine(cli_home / "quarantine").read()["raw"].to_pylist() == [POISON]


# ----------------------------------------------------------------------------- 2. clocks and groups


def test_bounded_runs_read_what_was_produced_under_cpu_contention(
    tmp_path: Path, broker: str, shop: Shop
) -> None:
    settings = topic_settings(tmp_path / "home", broker)
    lines = events_to_json_lines(shop.events)
    first, second = lines[:3000], lines[3000:4000]
    assert len(second) == 1000
    with busy_cores():
        produce_messages(settings, first)
        one = consume_stream(settings, max_seconds=60, idle_exit_seconds=3)
        assert one["ok"] and one["read"] == 3000, one
        assert one["assigned_after_s"] is not None
        produce_messages(settings, second)
        two = consume_stream(settings, max_seconds=60, idle_exit_seconds=3)
        assert two["ok"] and two["read"] == 1000, two
    assert len(set(lake_ids(settings))) == 4000


def test_demo_replay_reads_everything_under_cpu_contention(tmp_path: Path, broker: str) -> None:
    from aisle.app.jobs import ingest
    from aisle.app.jobs import shop as shop_jobs

    settings = topic_settings(tmp_path / "home", broker)
    shop_jobs.generate(settings, {"users": 400, "items": 80, "days": 10})
    with busy_cores():
        summary = ingest.replay_shop(settings, {"idle_seconds": 3.0, "max_seconds": 120.0})
    assert summary["ok"] and summary["stream"]["read"] == summary["sent"] > 0
    assert summary["stream"]["quarantined"] == len(ingest.BROKEN_MESSAGES)


def test_a_bounded_run_without_an_assignment_exits_1(tmp_path: Path, broker: str) -> None:
    # its own group: a member that leaves in the middle of its first join must not stall the default one
    settings = topic_settings(
        tmp_path / "home", broker, stream_assignment_timeout_seconds=0.2, consumer_group="never-assigned"
    )
    env = {"AISLE_STREAM_ASSIGNMENT_TIMEOUT_SECONDS": "0.2"}
    done = subprocess.run(
        [str(AISLE_BIN), "ingest", "stream", "--no-push-features", "--max-seconds", "0.2"],
        env={**env_of(settings), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    summary = last_json(done.stdout)
    assert summary["ok"] is False and summary["read"] == 0 and summary["assigned_after_s"] is None
    assert "got no partition" in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr


# ----------------------------------------------------------------------------- 3. the broker goes away


def test_broker_restart_is_reported_by_down_and_by_the_next_consumer(tmp_path: Path, shop: Shop) -> None:
    settings = load_settings(home=tmp_path / "home", profile="embedded", redis_url=None, kafka_bootstrap=None)
    services.services_up(settings, redis=False)
    try:
        produce_messages(settings, events_to_json_lines(shop.events.slice(0, 500)))
        down = services.services_down(settings)
        assert "500 not consumed by group aisle-ingest" in down["kafka"]["warning"]
        services.services_up(settings, redis=False)
        lost = consume_stream(settings, max_seconds=10, idle_exit_seconds=2)
        assert lost["ok"] is False and lost["lost_in_broker_restart"] == 500
        assert "restarted and lost 500" in lost["problem"]
        later = consume_stream(settings, max_seconds=10, idle_exit_seconds=2)
        assert later["ok"] is True and later["lost_in_broker_restart"] == 0  # reported once
    finally:
        services.services_down(settings)


def test_consumer_follows_the_broker_to_its_new_address(tmp_path: Path, shop: Shop) -> None:
    import threading

    from ingestion.stream import StopFlag

    settings = load_settings(home=tmp_path / "home", profile="embedded", redis_url=None, kafka_bootstrap=None)
    up = services.services_up(settings, redis=False)
    stop, outcome = StopFlag(), dict[str, Any]()
    lake = EventLake(settings.paths.lake)
    try:
        lines = events_to_json_lines(shop.events.slice(0, 400))

        def run() -> None:
            try:  # the test stops it; the bound only keeps a failing test from hanging
                outcome["summary"] = consume_stream(settings, stop=stop, max_seconds=300)
            except BaseException as exc:  # reported by the assertions below
                outcome["error"] = exc

        consumer = threading.Thread(target=run, daemon=True)
        consumer.start()
        produce_messages(settings, lines[:200])
        deadline = time.monotonic() + 40
        while lake.count() < 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert lake.count() == 200
        old_port = int(up["kafka"]["bootstrap"].rsplit(":", 1)[1])
        os.kill(int(up["kafka"]["pid"]), signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(int(up["kafka"]["pid"]), 0)
        moved = services.services_up(settings, redis=False)  # a new free port
        assert moved["kafka"]["bootstrap"] != f"127.0.0.1:{old_port}"
        produce_messages(settings, lines[200:])
        deadline = time.monotonic() + 120
        while lake.count() < 400 and time.monotonic() < deadline and consumer.is_alive():
            time.sleep(0.2)
        stop.event.set()
        consumer.join(timeout=30)
        assert "error" not in outcome, outcome
        assert lake.count() == 400 and len(set(lake_ids(settings))) == 400
    finally:
        stop.event.set()
        services.services_down(settings)
    summary = outcome["summary"]
    assert summary["bootstrap"] == moved["kafka"]["bootstrap"]
    assert summary["accepted"] == 400


def test_producer_reports_a_broker_that_dies_mid_send(tmp_path: Path, shop: Shop) -> None:
    settings = load_settings(home=tmp_path / "home", profile="embedded", redis_url=None, kafka_bootstrap=None)
    up = services.services_up(settings, redis=False)
    pid = int(up["kafka"]["pid"])
    chunks: list[int] = []

    def kill_after_first_chunk(sent: int) -> None:
        chunks.append(sent)
        if len(chunks) == 2 and services.is_alive(pid):  # the first 1,000 had half a second to land
            os.kill(pid, signal.SIGKILL)

    try:
        started = time.monotonic()
        summary = produce_messages(
            settings,
            events_to_json_lines(shop.events.slice(0, 3000)),
            rate=2000,
            progress=kill_after_first_chunk,
        )
    finally:
        services.services_down(settings)
    assert time.monotonic() - started < 60  # not a 60 s hang and a KafkaTimeoutError
    assert summary["ok"] is False and 1000 <= summary["produced"] < 3000
    assert summary["not_delivered"] == 3000 - summary["produced"]
    assert "acknowledged" in summary["problem"] and "not delivered" in summary["problem"]


# ----------------------------------------------------------------------------- 4. one rule for exit codes


EVENTS_HEADER = "event_id,event_type,user_id,item_id,ts\n"


def bad_files() -> dict[str, tuple[str, bytes, str]]:
    """name → (file name, content, words the failure sentence must hold)."""
    row = "e{k},view,u1,i1,2026-01-06T10:00:00Z\n"
    return {
        "wrong columns": ("wrong.csv", b"a,b,c\n1,2,3\n", "cannot tell from its columns"),
        "semicolons": ("semi.csv", b"event_id;event_type;user_id\ne1;view;u1\n", "other than commas"),
        "json array": (
            "pretty.json",
            b'[\n  {"event_id": "e1", "event_type": "view"},\n  {"event_id": "e2"}\n]\n',
            "JSON Lines needs one object per line",
        ),
        "refused batch": (
            "refused.csv",
            (EVENTS_HEADER + row.format(k=1) + "e2,teleport,u1,i1,2026-01-06T10:00:00Z\n" * 3).encode(),
            "refused whole",
        ),
        "duplicate header": ("dup.csv", b"event_id,event_id,user_id\ne1,e2,u1\n", "duplicate column name"),
        "garbage": ("junk.csv", bytes(range(256)) * 40, "not a CSV file"),
        "no newline": ("long.csv", b"x" * (1_100_000), "not a CSV header"),
    }


@pytest.mark.parametrize("case", list(bad_files()))
def test_a_file_that_lands_nothing_exits_1_with_its_story(case: str, tmp_path: Path, cli_home: Path) -> None:
    name, content, words = bad_files()[case]
    path = tmp_path / name
    path.write_bytes(content)
    result = runner.invoke(app, ["ingest", "batch", str(path)])
    assert result.exit_code == 1, result.output
    summary = last_json(result.stdout)
    assert summary["job"] == "ingest.batch" and summary["ok"] is False and summary["accepted"] == 0
    text = " ".join(result.output.split())
    assert words in text and "Traceback" not in text
    assert "\x00" not in result.output and "\ufffd" not in result.output  # no binary dumped
    if summary["read"]:
        assert summary["quarantined"] == summary["read"]
        raws = Quarantine(cli_home / "quarantine").read()["raw"].to_pylist()
        assert raws and all(r is not None for r in raws)


def test_a_huge_row_is_quarantined_and_the_rest_lands(tmp_path: Path, cli_home: Path) -> None:
    huge = "e-big,view,u1,i1,2026-01-06T10:00:00Z," + "x" * 2_000_000
    good = "".join(f"e{k},view,u{k},i1,2026-01-06T10:00:00Z,\n" for k in range(20))
    path = tmp_path / "big.csv"
    path.write_text("event_id,event_type,user_id,item_id,ts,note\n" + good + huge + "\n")
    result = runner.invoke(app, ["ingest", "batch", str(path)])
    assert result.exit_code == 0, result.output
    summary = last_json(result.stdout)
    assert (summary["accepted"], summary["quarantined"]) == (20, 1)
    [(reason, n)] = summary["top_reasons"].items()
    assert (
        n == 1
        and reason == f"CSV line of {len(huge):,} bytes is over the limit of 1,048,576 (AISLE_MAX_LINE_BYTES)"
    )
    stored = Quarantine(cli_home / "quarantine").read()
    assert len(stored["raw"][0].as_py()) == len(huge) and stored["row"][0].as_py().endswith("bytes in all)")


def test_a_directory_with_a_good_and_a_corrupt_file_is_partly_done(
    tmp_path: Path, shop: Shop, cli_home: Path
) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    write_events(shop.events.slice(0, 30), folder / "good.parquet")
    (folder / "broken.parquet").write_bytes(b"PAR1 this is not parquet")
    result = runner.invoke(app, ["ingest", "batch", str(folder)])
    assert result.exit_code == 1, result.output
    summary = last_json(result.stdout)
    assert summary["accepted"] == 30 and summary["ok"] is False
    assert list(summary["unusable_files"]) == [str(folder / "broken.parquet")]
    assert "not a readable Parquet file" in summary["problem"] and "1 of 2 inputs" in summary["problem"]
    assert EventLake(cli_home / "lake").count() == 30


def test_services_up_fails_when_the_configured_redis_does_not_answer(
    cli_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AISLE_REDIS_URL", f"redis://127.0.0.1:{services.free_port()}/0")
    monkeypatch.setenv("AISLE_KAFKA_BOOTSTRAP", f"127.0.0.1:{services.free_port()}")
    get_settings.cache_clear()
    result = runner.invoke(app, ["services", "up"])
    assert result.exit_code == 1, result.output
    assert last_json(result.stdout)["ok"] is False
    assert "do not answer" in " ".join(result.output.split())


# ----------------------------------------------------------------------------- 5. accounting


def test_counting_an_auditor_could_follow(tmp_path: Path, shop: Shop) -> None:
    settings = load_settings(home=tmp_path / "home", max_failure_rate=1.0)
    good = events_to_json_lines(shop.events.slice(0, 10))
    bad = (
        b'{"event_id": "b1", "event_type": "teleport", "user_id": "u1", "item_id": "i1", '
        b'"ts": "2026-01-06T10:00:00Z"}'
    )
    first = tmp_path / "a.jsonl"
    first.write_bytes(b"\n".join([*good, bad, bad]) + b"\n")
    one = ingest_batch(settings, [first])
    assert (one["accepted"], one["quarantined"], one["duplicates"]) == (
        10,
        2,
        0,
    )  # two identical lines: two rows
    elsewhere = tmp_path / "copy" / "a.jsonl"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(first.read_bytes())
    two = ingest_batch(settings, [elsewhere])
    assert (two["accepted"], two["quarantined"], two["duplicates"]) == (0, 0, 12)  # another path adds nothing
    # the same event_id with other content is a conflict, quarantined with both versions
    original = json.loads(good[0])
    changed = json.dumps({**original, "event_type": "purchase"}).encode()
    conflict = tmp_path / "conflict.jsonl"
    conflict.write_bytes(changed + b"\n" + good[1] + b"\n")
    three = ingest_batch(settings, [conflict])
    assert (three["accepted"], three["duplicates"], three["quarantined"], three["conflicts"]) == (0, 1, 1, 1)
    stored = Quarantine(settings.paths.quarantine).read().filter(pc.equal(pc.field("stage"), "dedup"))
    assert stored["raw"].to_pylist() == [changed]
    text = stored["row"][0].as_py()
    assert '"purchase"' in text and "kept in the lake" in text and f'"{original["event_type"]}"' in text
    lake = EventLake(settings.paths.lake).read()
    kept = lake.filter(pc.equal(lake["event_id"], original["event_id"]))
    assert kept["event_type"].to_pylist() == [original["event_type"]]


def test_the_kind_of_a_file_comes_from_its_columns(tmp_path: Path, shop: Shop) -> None:
    settings = load_settings(home=tmp_path / "home")
    write_events(shop.events.slice(0, 25), tmp_path / "catalogue_views.csv")
    write_events(shop.events.slice(25, 25), tmp_path / "users_clicks.csv")
    summary = ingest_batch(settings, [tmp_path / "catalogue_views.csv", tmp_path / "users_clicks.csv"])
    assert summary["ok"] and summary["accepted"] == 50 and summary["catalog"] is None
    items = tmp_path / "things.csv"
    items.write_text("item_id,title,category,price\ni1,Pan,Home>Kitchen>Pans,9.99\n")
    as_catalog = ingest_batch(settings, [items])
    assert as_catalog["catalog"]["accepted"] == 1 and as_catalog["read"] == 0
    odd = tmp_path / "odd.csv"
    odd.write_text("user_id,segment\nu1,gold\n")
    unknown = ingest_batch(settings, [odd])
    assert unknown["ok"] is False and "pass --kind" in unknown["unusable_files"][str(odd)]
    forced = ingest_batch(settings, [odd], kind="users")
    assert forced["ok"] and forced["users"] == 1


# ----------------------------------------------------------------------------- 6. concurrent jobs


def test_two_batch_jobs_and_the_stream_at_once_on_one_home(tmp_path: Path, broker: str, shop: Shop) -> None:
    settings = topic_settings(tmp_path / "home", broker)
    Ingester(settings).ingest_catalog(shop.catalog, "catalog")
    events = shop.events.sort_by("event_id")
    a, b, c = events.slice(0, 1500), events.slice(1500, 1500), events.slice(3000, 1000)
    write_events(a, tmp_path / "a.parquet")
    write_events(b, tmp_path / "b.csv")
    produce_messages(settings, events_to_json_lines(c))
    env = env_of(settings)
    jobs = [
        subprocess.Popen(
            [str(AISLE_BIN), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for args in (
            ["ingest", "batch", str(tmp_path / "a.parquet")],
            ["ingest", "batch", str(tmp_path / "b.csv")],
            ["ingest", "stream", "--no-push-features", "--max-events", "1000", "--max-seconds", "90"],
        )
    ]
    results = [(job.wait(timeout=180), *job.communicate()) for job in jobs]
    for code, out, err in results:
        assert code == 0, err[-2000:]
        assert last_json(out)["ok"] is True
    ids = lake_ids(settings)
    assert len(ids) == len(set(ids)) == 4000


# ----------------------------------------------------------------------------- 7. limits, not tracebacks


@pytest.mark.parametrize(
    ("args", "env", "words"),
    [
        (["data", "stream", "--offset", "-3"], {}, "--offset must not be negative"),
        (["ingest", "stream", "--max-seconds", "0"], {}, "--max-seconds must be positive"),
        (["ingest", "batch", "x.csv", "--kind", "orders"], {}, "--kind must be one of"),
        (["ingest", "stream"], {"AISLE_KAFKA_BOOTSTRAP": "notaport"}, "'notaport' is not host:port"),
    ],
)
def test_cli_inputs_are_checked_with_exit_2(
    args: list[str],
    env: dict[str, str],
    words: str,
    tmp_path: Path,
    cli_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    (tmp_path / "x.csv").write_text(EVENTS_HEADER)
    events = tmp_path / "e.parquet"
    monkeypatch.chdir(tmp_path)
    if args[:2] == ["data", "stream"]:
        args = [*args, "--path", str(events)]
        write_events(generate_shop(ShopConfig(users=5, items=5, days=1)).events, events)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert words in " ".join(result.output.split()) and "Traceback" not in result.output


def test_values_are_bounded_per_event_type_and_ids_trimmed(tmp_path: Path, shop: Shop) -> None:
    settings = load_settings(home=tmp_path / "home", max_failure_rate=1.0)
    base = json.loads(events_to_json_lines(shop.events.slice(0, 1))[0])
    rows = [
        {**base, "event_id": "p1", "event_type": "purchase", "value": 1e308},
        {**base, "event_id": "p2", "event_type": "purchase", "value": -1e308},
        {**base, "event_id": "p3", "event_type": "purchase", "value": -50},
        {**base, "event_id": "p5", "event_type": "purchase", "quantity": 5000},
        {**base, "event_id": "s1", "user_id": "   "},
        {**base, "event_id": "  t1  ", "user_id": " u-trim ", "item_id": base["item_id"] + " "},
    ]
    lines = [json.dumps(r) for r in rows] + [
        '{"event_id": "p4", "event_type": "purchase", "value": Infinity}'
    ]
    path = tmp_path / "values.jsonl"
    path.write_text("\n".join(lines) + "\n")
    summary = ingest_batch(settings, [path])
    assert (summary["accepted"], summary["quarantined"]) == (1, 6)
    lake = EventLake(settings.paths.lake).read()
    assert lake.select(["event_id", "user_id"]).to_pylist() == [{"event_id": "t1", "user_id": "u-trim"}]
    bad = Quarantine(settings.paths.quarantine).read()
    ids = [json.loads(r)["event_id"] if r.startswith("{") else r for r in bad["row"].to_pylist()]
    reasons = dict(zip(ids, bad["reason"].to_pylist(), strict=True))
    assert "value out of range 0..1e+06 for a price" in reasons["p1"] and "for a price" in reasons["p2"]
    assert "for a price" in reasons["p3"] and reasons["p5"] == "quantity over 1000"
    assert "user_id empty" in reasons["s1"] and "p4" in reasons
    # rows rejected at the gate keep the line that was sent, not the parsed row
    assert set(bad["row"].to_pylist()) == set(lines[:5] + lines[6:])


def test_a_killed_writers_temporary_is_swept(tmp_path: Path, shop: Shop) -> None:
    settings = load_settings(home=tmp_path / "home")
    lake = EventLake(settings.paths.lake)
    lake.write(shop.events.slice(0, 5))
    leftover = lake.parts()[0].parent / ".part-1-dead.parquet.tmp"
    leftover.write_bytes(b"x" * 570_000)
    EventLake(settings.paths.lake).write(shop.events.slice(5, 5))
    assert not leftover.exists() and EventLake(settings.paths.lake).count() == 10


def test_configuring_a_redis_url_stops_the_embedded_one(tmp_path: Path) -> None:
    """`services down` after switching to a configured Redis must not leave the embedded one running."""
    embedded = load_settings(home=tmp_path / "home", profile="embedded", redis_url=None, kafka_bootstrap=None)
    first = services.services_up(embedded, kafka=False)
    pid = int(first["redis"]["pid"])
    other = services.services_up(embedded, kafka=False, redis=False)  # nothing asked: nothing changes
    assert other == {} and services.is_alive(pid)
    external = embedded.model_copy(update={"redis_url": f"redis://127.0.0.1:{services.free_port()}/0"})
    switched = services.services_up(external, kafka=False)
    assert "stopped the embedded redis" in switched["redis"]["note"]
    deadline = time.monotonic() + 10
    while services.is_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not services.is_alive(pid)
    assert services.services_down(external, kafka=False)["redis"]["note"] == "external, left running"
