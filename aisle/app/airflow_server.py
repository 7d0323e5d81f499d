"""Airflow 3 as real processes under ``$AISLE_HOME/airflow``: API server (with the UI), scheduler, DAG
processor and, when a DAG needs one, the triggerer.

Why separate processes rather than ``airflow standalone``: standalone hides which component failed,
writes its own generated password and config, and cannot be told to stop one part. Here each
component is its own session (``start_new_session``), its pid and ports are recorded in
``$AISLE_HOME/run/airflow.json``, and ``airflow_down`` stops exactly those sessions: every process in
them, including the task runners the LocalExecutor starts in their own process groups.

Order matters (measured, see docs/operations.md): the API server must answer before the scheduler
starts, because tasks report through its Execution API; stopping goes the other way round.

The UI login (user ``admin``) gets a password generated once with :mod:`secrets` and written to the
SimpleAuthManager's password file before the API server first starts; ``airflow_status`` shows it.
The JWT and API secrets shared by the components are generated once too, never written in code.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from aisle.app.dag_runner import DAGS_FOLDER, airflow_env, migrate_airflow_db
from aisle.app.processes import launch_detached, log_tail
from aisle.app.services import free_port
from aisle.app.statefiles import read_json, write_json
from aisle.core.endpoints import UI_STATE_FILES, is_alive
from aisle.core.errors import AisleError, BadInput, ServiceUnavailable
from aisle.core.locks import file_lock
from aisle.core.settings import Settings, child_env, ensure_home

HOST: Final = "127.0.0.1"
USERNAME: Final = "admin"
#: Start order; ``airflow_down`` stops in reverse (API server last: running tasks report through it).
COMPONENTS: Final = ("api-server", "scheduler", "dag-processor", "triggerer")
#: What each component's heartbeat is called in ``/api/v2/monitor/health``.
HEALTH_KEYS: Final = {"scheduler": "scheduler", "dag-processor": "dag_processor", "triggerer": "triggerer"}
START_TIMEOUT_S: Final = 180.0
STOP_GRACE_S: Final = 20.0

_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


# ----------------------------------------------------------------------------- files


def state_file(settings: Settings) -> Path:
    return settings.paths.run / UI_STATE_FILES["airflow"]


def password_file(settings: Settings) -> Path:
    """The SimpleAuthManager's password file (JSON ``{user: password}``), mode 600."""
    return settings.paths.airflow / "passwords.json"


def _secrets_file(settings: Settings) -> Path:
    return settings.paths.airflow / "secrets.json"


def component_secrets(settings: Settings) -> dict[str, str]:
    """Secrets every component must share (JWT signing, API session key), generated once per home."""
    path = _secrets_file(settings)
    found = read_json(path)
    if {"jwt_secret", "secret_key"} <= set(found):
        return {k: str(v) for k, v in found.items()}
    created = {"jwt_secret": secrets.token_urlsafe(64), "secret_key": secrets.token_urlsafe(32)}
    write_json(path, created, private=True)
    return created


def ui_password(settings: Settings, *, create: bool = False) -> str | None:
    """The UI/API password of ``admin``: generated once (when ``create``), then read back."""
    path = password_file(settings)
    found = read_json(path)
    if USERNAME in found:
        return str(found[USERNAME])
    if not create:
        return None
    password = secrets.token_urlsafe(12)
    write_json(path, {**found, USERNAME: password}, private=True)
    return password


def read_state(settings: Settings) -> dict[str, Any]:
    return read_json(state_file(settings))


def _write_state(settings: Settings, state: dict[str, Any]) -> None:
    if not state.get("components"):
        state_file(settings).unlink(missing_ok=True)
        return
    write_json(state_file(settings), state)


@contextlib.contextmanager
def _locked(settings: Settings) -> Iterator[None]:
    """Serialise up/down across processes so two `up`s cannot both start a scheduler."""
    with file_lock(settings.paths.run / "airflow.lock"):
        yield


# ----------------------------------------------------------------------------- environment


def base_url(settings: Settings, port: int | None = None) -> str:
    recorded = read_state(settings).get("url")
    if port is None and recorded:
        return str(recorded)
    return f"http://{HOST}:{port or settings.airflow_port}"


def server_env(settings: Settings, port: int, log_ports: tuple[int, int]) -> dict[str, str]:
    """Everything the live components need on top of the in-process Airflow environment."""
    keys = component_secrets(settings)
    url = f"http://{HOST}:{port}"
    return {
        **airflow_env(settings),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(settings.airflow_parallelism),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USERNAME}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(password_file(settings)),
        "AIRFLOW__API__HOST": HOST,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": url,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
        "AIRFLOW__API__SECRET_KEY": keys["secret_key"],
        "AIRFLOW__API_AUTH__JWT_SECRET": keys["jwt_secret"],
        # new DAG files are seen within seconds rather than the default five minutes
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
        # the log servers bind 0.0.0.0:8793/8794 by default: two homes on one machine would collide
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(log_ports[0]),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(log_ports[1]),
        "AISLE_HOME": str(settings.paths.home),
        "PYTHONUNBUFFERED": "1",
    }


def _port_in_use(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


# ----------------------------------------------------------------------------- processes


def _session_pids(sid: int) -> list[int]:
    """Every live process of the session ``sid`` (the component and all it forked, tasks included)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        # after the command name: state, ppid, pgrp, session
        if len(fields) > 3 and int(fields[3]) == sid and fields[0] not in ("Z", "X"):
            pids.append(int(entry.name))
    return pids


def _is_component(entry: dict[str, Any]) -> bool:
    """Whether the recorded pid still leads the session we started (pids are reused after a crash)."""
    pid = entry.get("pid")
    if not isinstance(pid, int) or pid <= 0 or not is_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        return os.getsid(pid) == pid and "airflow" in cmdline
    except OSError:
        return False


def _signal_session(sid: int, sig: int) -> None:
    groups = set()
    for pid in _session_pids(sid):
        with contextlib.suppress(OSError):
            groups.add(os.getpgid(pid))
    for group in groups:
        with contextlib.suppress(OSError):
            os.killpg(group, sig)


def _wait_session_gone(sid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        child = _CHILDREN.get(sid)
        if child is not None:
            child.poll()
        if not _session_pids(sid):
            return True
        time.sleep(0.1)
    return not _session_pids(sid)


def _stop_session(sid: int, grace_s: float = STOP_GRACE_S) -> str:
    """SIGTERM the leader (it shuts its own children down), then the whole session, then SIGKILL.

    Signalling every process at once makes the LocalExecutor wait for workers that are already gone;
    a running task ignores SIGTERM (its runner only calls ``on_kill``), hence the SIGKILL at the end.
    """
    with contextlib.suppress(OSError):
        os.kill(sid, signal.SIGTERM)
    how = "terminated"
    if not _wait_session_gone(sid, grace_s):
        _signal_session(sid, signal.SIGTERM)
        if not _wait_session_gone(sid, 3.0):
            _signal_session(sid, signal.SIGKILL)
            _wait_session_gone(sid, 5.0)
            how = f"killed: still running {grace_s:.0f} s after SIGTERM (an interrupted task is retried)"
    child = _CHILDREN.pop(sid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=1)
    return how


def _launch(component: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    proc = launch_detached([sys.executable, "-m", "airflow", component], log, env=env, append=True)
    _CHILDREN[proc.pid] = proc
    return proc


# ----------------------------------------------------------------------------- health


def health(url: str, timeout_s: float = 3.0) -> dict[str, Any] | None:
    """``/api/v2/monitor/health`` (no login needed); None when the API server does not answer."""
    try:
        with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=timeout_s) as response:
            data = json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None
    return data if isinstance(data, dict) else None


def _fresh(report: dict[str, Any] | None, key: str, since: datetime) -> bool:
    """Healthy with a heartbeat newer than our start (an old heartbeat still reads healthy a while)."""
    part = (report or {}).get(key) or {}
    if part.get("status") != "healthy":
        return False
    beat = part.get(f"latest_{key}_heartbeat")
    if not beat:
        return False
    return datetime.fromisoformat(str(beat).replace("Z", "+00:00")) >= since


def _wait_for(
    what: str, check: Any, procs: dict[str, subprocess.Popen[bytes]], logs: dict[str, Path], timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        for name, proc in procs.items():
            if proc.poll() is not None:
                raise ServiceUnavailable(
                    f"airflow {name} exited with code {proc.returncode} while starting; "
                    f"last lines of {logs[name]}: {log_tail(logs[name], 5)}"
                )
        time.sleep(0.5)
    where = next(iter(logs.values())).parent if logs else "the run directory"
    raise ServiceUnavailable(f"{what} within {timeout_s:.0f} s; see the airflow-*.log files in {where}")


def needs_triggerer(env: dict[str, str]) -> bool:
    """Whether any DAG in dags/ has a task that defers (the only work a triggerer does).

    A deferrable operator says so with ``deferrable=True`` or starts from a trigger; a task that
    defers only at run time cannot be seen here, so ``aisle airflow up --triggerer`` forces it. The
    DAGs are loaded in a child with the components' environment: importing Airflow here would fix its
    configuration for this process to whatever AIRFLOW_HOME happened to be set.
    """
    done = subprocess.run(
        [sys.executable, "-m", "aisle.app.airflow_server", "needs-triggerer"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    answer = done.stdout.strip().splitlines()[-1:] if done.returncode == 0 else []
    if answer not in (["yes"], ["no"]):
        raise AisleError(f"could not load the DAGs to inspect them: {(done.stderr or done.stdout)[-500:]}")
    return answer == ["yes"]


def _print_needs_triggerer() -> None:
    import io

    from aisle.app.dag_runner import load_dags

    with contextlib.redirect_stdout(io.StringIO()):  # Airflow logs its DagBag's info lines to stdout
        dags = load_dags()
    deferring = any(
        getattr(task, "deferrable", False) is True or getattr(task, "start_from_trigger", False)
        for dag in dags.values()
        for task in dag.tasks
    )
    print("yes" if deferring else "no")


# ----------------------------------------------------------------------------- public API


def airflow_up(
    settings: Settings,
    *,
    port: int | None = None,
    triggerer: bool | None = None,
    timeout_s: float = START_TIMEOUT_S,
) -> dict[str, Any]:
    """Start the components (reusing running ones) and wait until they answer and the DAGs are parsed.

    All or nothing: when a component fails to start, the ones this call started are stopped again.
    """
    ensure_home(settings)
    port = port or settings.airflow_port
    with _locked(settings):
        state = read_state(settings)
        running = {name: entry for name, entry in state.get("components", {}).items() if _is_component(entry)}
        if running and state.get("port") != port:
            raise BadInput(
                f"Airflow already runs at {state.get('url')}, not on port {port}; "
                "run `aisle airflow down` first"
            )
        if "api-server" not in running and _port_in_use(port):
            raise BadInput(f"port {port} on {HOST} is already in use; set AISLE_AIRFLOW_PORT to a free port")
        migrated = migrate_airflow_db(settings)
        password = ui_password(settings, create=True)
        log_ports = tuple(state.get("log_ports") or (free_port(), free_port()))
        env = child_env(server_env(settings, port, (int(log_ports[0]), int(log_ports[1]))))
        wanted = [c for c in COMPONENTS if c != "triggerer"]
        if triggerer or (triggerer is None and needs_triggerer(env)):
            wanted.append("triggerer")
        started: dict[str, subprocess.Popen[bytes]] = {}
        logs = {name: settings.paths.run / f"airflow-{name}.log" for name in wanted}
        since = datetime.now(UTC)
        url = f"http://{HOST}:{port}"
        components: dict[str, Any] = dict(running)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        try:
            for name in wanted:
                if name in running:
                    continue
                proc = _launch(name, env, logs[name])
                started[name] = proc
                components[name] = {
                    "pid": proc.pid,
                    "log": str(logs[name]),
                    "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                }
                if name == "api-server":
                    _wait_for(
                        f"the Airflow API server did not answer at {url}",
                        lambda: health(url) is not None,
                        started,
                        logs,
                        timeout_s,
                    )
                    timings[name] = round(time.perf_counter() - t0, 2)
            pending = {n: HEALTH_KEYS[n] for n in started if n in HEALTH_KEYS}

            def all_healthy() -> bool:
                report = health(url)
                for comp, key in list(pending.items()):
                    if _fresh(report, key, since):
                        timings[comp] = round(time.perf_counter() - t0, 2)
                        del pending[comp]
                return not pending

            _wait_for("Airflow components did not report healthy", all_healthy, started, logs, timeout_s)
            state = {
                "url": url,
                "port": port,
                "log_ports": list(log_ports),
                "db": _display_db(settings),
                "components": components,
            }
            _write_state(settings, state)
            dags = _wait_for_dags(settings, url, password or "", started, logs, timeout_s)
        except BaseException:
            for proc in reversed(list(started.values())):
                _stop_session(proc.pid, grace_s=5.0)
            if started:
                _write_state(settings, {**state, "components": running})
            raise
    return {
        "url": url,
        "username": USERNAME,
        "password": password,
        "db": _display_db(settings),
        "executor": "LocalExecutor",
        "parallelism": settings.airflow_parallelism,
        "migrated": migrated,
        "started": sorted(started),
        "reused": sorted(running),
        "components": {n: components[n]["pid"] for n in components},
        "ready_seconds": timings,
        "seconds": round(time.perf_counter() - t0, 2),
        "dags": dags,
    }


def _wait_for_dags(
    settings: Settings,
    url: str,
    password: str,
    procs: dict[str, subprocess.Popen[bytes]],
    logs: dict[str, Path],
    timeout_s: float,
) -> list[str]:
    """Wait until every file in dags/ is a DAG the API knows; a file that fails to parse is an error."""
    from aisle.app.airflow_client import AirflowClient

    expected = {p.stem for p in DAGS_FOLDER.glob("*.py") if not p.name.startswith("_")}
    client = AirflowClient(url, USERNAME, password)
    known: set[str] = set()

    def parsed() -> bool:
        known.clear()
        known.update(client.dag_ids())
        if expected <= known:
            return True
        errors = client.import_errors()
        if errors:
            first = errors[0]
            raise AisleError(
                f"DAG file {first.get('filename')} does not import: "
                f"{str(first.get('stack_trace', '')).strip().splitlines()[-1:]}; fix it, the components "
                "keep running and pick the file up again"
            )
        return False

    _wait_for(f"the DAGs {sorted(expected)} were not parsed", parsed, procs, logs, timeout_s)
    return sorted(known)


def _display_db(settings: Settings) -> str:
    """The DB URL without its password (status output and the state file)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(settings.effective_airflow_db_url).render_as_string(hide_password=True)
    except Exception:  # a malformed URL is reported by migrate, not here
        return "<unparseable URL>"


def airflow_down(settings: Settings, *, grace_s: float = STOP_GRACE_S) -> dict[str, Any]:
    """Stop what ``airflow_up`` started, in reverse order; harmless when nothing runs."""
    result: dict[str, Any] = {}
    with _locked(settings):
        state = read_state(settings)
        components = state.get("components", {})
        for name in reversed(COMPONENTS):
            entry = components.pop(name, None)
            if entry is None:
                continue
            if _is_component(entry):
                how = _stop_session(int(entry["pid"]), grace_s)
                result[name] = {"stopped": True, "pid": entry["pid"], "note": how}
            else:
                result[name] = {"stopped": False, "pid": entry.get("pid"), "note": "was no longer running"}
        _write_state(settings, {**state, "components": components})
    return result


def airflow_status(settings: Settings) -> dict[str, Any]:
    """Each component's pid and health, the UI URL and login. Never raises."""
    state = read_state(settings)
    url = str(state.get("url") or base_url(settings))
    report = health(url) if state.get("components") else None
    components = {}
    for name, entry in state.get("components", {}).items():
        alive = _is_component(entry)
        key = HEALTH_KEYS.get(name)
        answering = (
            report is not None if key is None else (report or {}).get(key, {}).get("status") == "healthy"
        )
        components[name] = {
            "pid": entry.get("pid"),
            "running": alive,
            "healthy": bool(alive and answering),
            "log": entry.get("log"),
        }
    healthy = bool(components) and all(c["healthy"] for c in components.values())
    summary: dict[str, Any] = {
        "url": url,
        "username": USERNAME,
        "password": ui_password(settings),
        "password_file": str(password_file(settings)),
        "db": _display_db(settings),
        "components": components,
        "ok": healthy,
    }
    if not components:
        summary["note"] = "not running; run `aisle airflow up`"
    return summary


def running_url(settings: Settings) -> str | None:
    """The API server's URL when ours is running, else None (callers then say how to start it)."""
    state = read_state(settings)
    entry = state.get("components", {}).get("api-server")
    if entry and _is_component(entry):
        return str(state["url"])
    return None


if __name__ == "__main__" and sys.argv[1:] == ["needs-triggerer"]:
    _print_needs_triggerer()
