"""``aisle ui``: every web UI one command away, against the current ``$AISLE_HOME``.

Each UI is started (or found, when an earlier ``aisle ui`` left it running) on a free local port as a
detached process in its own session, recorded in ``$AISLE_HOME/run/ui.json`` with its URL and log, and
stopped as a whole process group by ``aisle ui --stop``, so worker processes a server forks go with it.

- ``mlflow``: ``mlflow server`` over the tracking store in settings (an external tracking URI is only
  reported, never started).
- ``docs``: the Great Expectations Data Docs, a static site, served by Python's ``http.server``.
- ``airflow``: the API server that ``aisle airflow up`` (``aisle.app.airflow_server``) runs, found or
  started with its scheduler and DAG processor; the login is the one generated for this home.
- ``evidently``: ``evidently ui`` over the monitoring workspace, found or started by
  ``aisle.app.evidently_ui`` (shared with `aisle monitor ui` and the demo); ``--stop`` stops it.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aisle.app.processes import launch_detached, wait_answering
from aisle.app.services import free_port
from aisle.app.statefiles import read_json, write_json
from aisle.core.endpoints import UI_STATE_FILES, answers, is_alive, is_our_server
from aisle.core.errors import BadInput, ServiceUnavailable
from aisle.core.locks import file_lock
from aisle.core.settings import Settings, child_env, ensure_home, process_env

UI_NAMES = ("mlflow", "airflow", "evidently", "docs")
HOST = "127.0.0.1"
START_TIMEOUT_S = 120.0  # MLflow's server needs ~10 s on an idle box, far more on a busy 2-core one
STOP_GRACE_S = 10.0
NO_LOGIN = "none (local only, bound to 127.0.0.1)"

_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class _Served:
    """A UI that Aisle runs as a local process: how to start it and where it answers."""

    name: str
    title: str
    command: Callable[[Settings, int], list[str]]
    path: str  # appended to http://HOST:PORT for the URL a person opens
    ready: Callable[[Settings], str | None]  # None when it can start, else why not (one sentence)
    env: tuple[tuple[str, str], ...] = ()


def _mlflow_command(settings: Settings, port: int) -> list[str]:
    artifacts = (settings.paths.mlflow / "artifacts").resolve().as_uri()
    return [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", settings.effective_mlflow_uri,
        "--default-artifact-root", artifacts,
        "--artifacts-destination", artifacts,
        "--host", HOST,
        "--port", str(port),
        "--workers", "1",
    ]  # fmt: skip


def _docs_command(settings: Settings, port: int) -> list[str]:
    site = settings.paths.data_docs
    return [sys.executable, "-m", "http.server", str(port), "--bind", HOST, "--directory", str(site)]


def _mlflow_ready(settings: Settings) -> str | None:
    settings.paths.mlflow.mkdir(parents=True, exist_ok=True)
    return None


def _docs_ready(settings: Settings) -> str | None:
    if (settings.paths.data_docs / "index.html").is_file():
        return None
    return (
        f"no Data Docs under {settings.paths.data_docs} yet: they are built when events are validated; "
        "run `aisle demo` or `aisle ingest batch PATH`"
    )


_SERVED: dict[str, _Served] = {
    # no job runner: it forks eight huey consumers for GenAI scorers that Aisle never schedules
    "mlflow": _Served(
        "mlflow",
        "MLflow: runs, comparison tables, registered models",
        _mlflow_command,
        "/",
        _mlflow_ready,
        env=(("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false"),),
    ),
    "docs": _Served(
        "docs",
        "Great Expectations Data Docs: what the ingestion gate checked",
        _docs_command,
        "/index.html",
        _docs_ready,
    ),
}

AIRFLOW_TITLE = "Airflow: DAG runs, task logs, assets"
EVIDENTLY_TITLE = "Evidently: drift and recommendation-quality dashboards"


# ----------------------------------------------------------------------------- state file


def _state_file(settings: Settings) -> Path:
    return settings.paths.run / UI_STATE_FILES["ui"]


def _read_state(settings: Settings) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in read_json(_state_file(settings)).items() if isinstance(v, dict)}


def _write_state(settings: Settings, state: dict[str, dict[str, Any]]) -> None:
    if state:
        write_json(_state_file(settings), state)
    else:
        _state_file(settings).unlink(missing_ok=True)


@contextlib.contextmanager
def _locked(settings: Settings) -> Iterator[None]:
    """Two `aisle ui` at once must not both start a server for the same UI."""
    with file_lock(settings.paths.run / "ui.lock"):
        yield


# ----------------------------------------------------------------------------- processes


def _group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` still runs (zombies do not count; our own child is reaped)."""
    child = _CHILDREN.get(pgid)
    if child is not None:
        child.poll()
    if Path("/proc").is_dir():
        return _members(pgid) > 0
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _members(pgid: int) -> int:
    """Live processes in group ``pgid`` other than zombies (Linux /proc)."""
    proc = Path("/proc")
    count = 0
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if len(fields) > 2 and fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
            count += 1
    return count


def _stop_group(pgid: int, grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM the whole process group, SIGKILL what is left after ``grace_s``, reap our child."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 3.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and _group_alive(pgid):
            time.sleep(0.1)
        if not _group_alive(pgid):
            break
    child = _CHILDREN.pop(pgid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=1.0)


def _start(settings: Settings, ui: _Served, timeout_s: float) -> dict[str, Any]:
    port = free_port()
    workdir = settings.paths.run / "ui" / ui.name
    workdir.mkdir(parents=True, exist_ok=True)
    log = settings.paths.run / f"ui-{ui.name}.log"
    proc = launch_detached(  # its own process group: --stop takes its workers with it
        ui.command(settings, port),
        log,
        cwd=workdir,
        env=child_env({**process_env(settings), **dict(ui.env)}),
    )
    _CHILDREN[proc.pid] = proc
    url = f"http://{HOST}:{port}{ui.path}"
    try:
        wait_answering(
            proc,
            lambda: answers(url, timeout_s=2.0),
            what=f"{ui.name} UI",
            where=url,
            log=log,
            timeout_s=timeout_s,
            stop=_stop_group,
        )
    except ServiceUnavailable:
        _CHILDREN.pop(proc.pid, None)
        raise
    return {
        "url": url,
        "pid": proc.pid,
        "port": port,
        "binary": os.path.realpath(sys.executable),
        "log": str(log),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _entry_running(entry: dict[str, Any] | None) -> bool:
    return bool(entry) and is_our_server(entry or {}) and answers(str((entry or {}).get("url")))


# ----------------------------------------------------------------------------- public API


def selected(which: str) -> tuple[str, ...]:
    """``which`` as UI names: one of :data:`UI_NAMES` or ``all``."""
    if which == "all":
        return UI_NAMES
    if which not in UI_NAMES:
        raise BadInput(f"unknown UI {which!r}; choose one of {', '.join(UI_NAMES)} or all")
    return (which,)


def ui_up(settings: Settings, names: tuple[str, ...], timeout_s: float = START_TIMEOUT_S) -> dict[str, Any]:
    """Start or find each named UI; returns per UI its url, login, state and a note."""
    ensure_home(settings)
    result: dict[str, Any] = {}
    with _locked(settings):
        state = _read_state(settings)
        for name in names:
            result[name] = _up_one(settings, name, state, timeout_s)
        _write_state(settings, state)
    return result


def _up_one(
    settings: Settings, name: str, state: dict[str, dict[str, Any]], timeout_s: float
) -> dict[str, Any]:
    if name == "airflow":
        return _airflow_up(settings, state)
    if name == "evidently":
        return _evidently_up(settings)
    ui = _SERVED[name]
    if name == "mlflow" and settings.mlflow_tracking_uri and settings.mlflow_tracking_uri.startswith("http"):
        return {
            "title": ui.title,
            "url": settings.mlflow_tracking_uri,
            "login": "as configured on that server",
            "state": "external",
            "note": "AISLE_MLFLOW_TRACKING_URI points at a running server",
        }
    recorded = state.get(name)
    if recorded is not None and _entry_running(recorded):
        return {
            "title": ui.title,
            "url": recorded["url"],
            "login": NO_LOGIN,
            "state": "running",
            "pid": recorded["pid"],
            "log": recorded["log"],
            "note": "already running",
        }
    if recorded is not None:  # recorded but gone or hung: replace it
        if is_our_server(recorded):
            _stop_group(int(recorded["pid"]))
        state.pop(name, None)
    why_not = ui.ready(settings)
    if why_not is not None:
        return {"title": ui.title, "url": None, "login": None, "state": "unavailable", "note": why_not}
    entry = _start(settings, ui, timeout_s)
    state[name] = entry
    return {
        "title": ui.title,
        "url": entry["url"],
        "login": NO_LOGIN,
        "state": "started",
        "pid": entry["pid"],
        "log": entry["log"],
        "note": "started",
    }


def _airflow_up(settings: Settings, state: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Airflow's UI is its API server: found when `aisle airflow up` (or the demo) runs it, else started
    with all its components by ``aisle.app.airflow_server``, and then stopped again by ``--stop``."""
    from aisle.app import airflow_server

    url = airflow_server.running_url(settings)
    started = url is None
    if started:
        url = str(airflow_server.airflow_up(settings)["url"])
        state["airflow"] = {"url": url, "started_by_ui": True}
    login = f"{airflow_server.USERNAME} / {airflow_server.ui_password(settings)}"
    note = "started with its scheduler and DAG processor" if started else "already running"
    return {"title": AIRFLOW_TITLE, "url": url, "login": login, "state": "started" if started else "running",
            "note": note}  # fmt: skip


def _evidently_up(settings: Settings) -> dict[str, Any]:
    """The Evidently UI over the monitoring workspace, found or started by ``aisle.app.evidently_ui``
    (the same process `aisle monitor ui` and the demo use)."""
    from aisle.app.evidently_ui import start_ui

    info = start_ui(settings)
    state = "started" if info.get("started") else "running"
    return {"title": EVIDENTLY_TITLE, "url": info["url"], "login": NO_LOGIN, "state": state,
            "pid": info.get("pid"), "log": info.get("log"), "note": state}  # fmt: skip


def ui_down(settings: Settings, names: tuple[str, ...] = UI_NAMES) -> dict[str, Any]:
    """Stop the UIs ``ui_up`` started (their whole process groups); others are left alone."""
    result: dict[str, Any] = {}
    with _locked(settings):
        state = _read_state(settings)
        for name in names:
            if name == "evidently":  # recorded by its own module, whoever started it
                from aisle.app.evidently_ui import stop_ui

                stopped = stop_ui(settings)
                note = "stopped" if stopped.get("stopped") else str(stopped.get("note") or "not running")
                result[name] = {
                    "stopped": bool(stopped.get("stopped")),
                    "pid": stopped.get("pid"),
                    "note": note,
                }
                continue
            entry = state.pop(name, None)
            if entry is None:
                result[name] = {"stopped": False, "note": "not running"}
            elif name == "airflow":  # only when `aisle ui` started it; else `aisle airflow down` owns it
                from aisle.app.airflow_server import airflow_down

                airflow_down(settings)
                result[name] = {"stopped": True, "note": "stopped (all Airflow components)"}
            elif is_our_server(entry):
                _stop_group(int(entry["pid"]))
                result[name] = {"stopped": True, "pid": entry["pid"], "note": "stopped"}
            else:
                result[name] = {"stopped": False, "pid": entry.get("pid"), "note": "was no longer running"}
        _write_state(settings, state)
    return result


def ui_running(settings: Settings) -> dict[str, str]:
    """URLs of the UIs that run now (for the demo's last screen); probes only, starts nothing."""
    from aisle.app.airflow_server import running_url
    from aisle.app.evidently_ui import find_ui

    running: dict[str, str] = {}
    airflow = running_url(settings)
    if airflow:
        running["airflow"] = airflow
    evidently = find_ui(settings)
    if evidently:
        running["evidently"] = str(evidently["url"])
    for name, entry in _read_state(settings).items():
        if _entry_running(entry):
            running[name] = str(entry["url"])
    return running


def process_gone(pid: int) -> bool:
    """Whether nothing of the process group ``pid`` led remains (tests check ``--stop`` left nothing)."""
    return not is_alive(pid) and not _group_alive(pid)


def aisle_command(settings: Settings) -> str:
    """How this user spells an ``aisle`` command that reaches the same ``$AISLE_HOME``: copy-pasteable.

    ``aisle`` when that is on PATH and is the program running now, else the path it was started by
    (``.venv/bin/aisle`` after ``make demo``); prefixed with ``AISLE_HOME=...`` when the state is not in
    the default ``var/`` of the current directory.
    """
    program = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path("aisle")
    spelled = "aisle"
    if program.name == "aisle":
        on_path = shutil.which("aisle")
        if on_path is None or Path(on_path).resolve() != program.resolve():
            try:
                spelled = str(program.resolve().relative_to(Path.cwd()))
            except ValueError:
                spelled = str(program.resolve())
    default_home = (Path.cwd() / "var").resolve()
    if settings.paths.home != default_home:
        spelled = f"AISLE_HOME={shlex.quote(str(settings.paths.home))} {spelled}"
    return spelled
