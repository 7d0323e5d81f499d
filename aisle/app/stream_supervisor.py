"""The stream ingester as a long-running, supervised process (`aisle services up --stream`).

Why not an Airflow task: a consumer that never ends would hold an executor slot for ever, show as
"running" with no end, be killed by task timeouts and restarted by retries with backoff meant for batch
work, and its freshness (a click visible online in under a second) would hang on the scheduler. Airflow
is for bounded work; the consumer is a service. So a small supervisor process runs
the `ingest.stream` job (the one `aisle ingest stream` runs) in a child process and:

* restarts it when it exits on its own (a crash, a lost broker), with exponential backoff (1 s, 2 s,
  ... 60 s) that resets after a minute of healthy running; offsets are committed only after a
  durable lake write, so a restart loses and doubles nothing;
* stops it cleanly on SIGTERM (`aisle services down`): the child finishes its micro-batch, commits and
  exits; only then does the supervisor exit;
* tells Airflow when the stream added events to the lake (an `aisle_event_lake` asset event through
  the REST API, at most every ``AISLE_STREAM_PUBLISH_SECONDS``, only when the ingester accepted new
  events), so `build_features` follows the stream as it follows files.

State (pids, restarts, last exit, last asset event) lives in ``$AISLE_HOME/run/stream.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from aisle.app.statefiles import read_json, write_json
from aisle.core.endpoints import is_alive
from aisle.core.errors import ServiceUnavailable
from aisle.core.settings import Settings, child_env, ensure_home

BACKOFF_MAX_S: Final = 60.0
HEALTHY_AFTER_S: Final = 60.0
STOP_TIMEOUT_S: Final = 30.0


def state_file(settings: Settings) -> Path:
    return settings.paths.run / "stream.json"


def log_file(settings: Settings) -> Path:
    return settings.paths.run / "stream-ingest.log"


def read_state(settings: Settings) -> dict[str, Any]:
    return read_json(state_file(settings))


def _write_state(settings: Settings, state: dict[str, Any]) -> None:
    write_json(state_file(settings), state)


def _is_supervisor(pid: Any) -> bool:
    if not isinstance(pid, int) or not is_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return "aisle.app.stream_supervisor" in cmdline


# ----------------------------------------------------------------------------- control (other processes)


def stream_up(settings: Settings, timeout_s: float = 30.0) -> dict[str, Any]:
    """Start the supervisor (detached) unless it runs; returns its pid and the ingester's log."""
    ensure_home(settings)
    state = read_state(settings)
    if _is_supervisor(state.get("pid")):
        return {"pid": state["pid"], "started": False, "log": str(log_file(settings))}
    settings.paths.run.mkdir(parents=True, exist_ok=True)
    with (settings.paths.run / "stream-supervisor.log").open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "aisle.app.stream_supervisor"],
            env=child_env({"AISLE_HOME": str(settings.paths.home), "PYTHONUNBUFFERED": "1"}),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = read_state(settings)
        if state.get("pid") == proc.pid and state.get("child_pid"):
            return {"pid": proc.pid, "started": True, "log": str(log_file(settings))}
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    raise ServiceUnavailable(
        f"the stream supervisor did not start; see {settings.paths.run / 'stream-supervisor.log'}"
    )


def stream_down(settings: Settings, timeout_s: float = STOP_TIMEOUT_S) -> dict[str, Any]:
    """SIGTERM the supervisor: the ingester commits its last micro-batch, then both exit."""
    state = read_state(settings)
    pid = state.get("pid")
    if not _is_supervisor(pid):
        state_file(settings).unlink(missing_ok=True)
        return {"stopped": False, "pid": pid, "note": "not running"}
    assert isinstance(pid, int)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and is_alive(pid):
        time.sleep(0.1)
    note = "stopped after committing its last micro-batch"
    if is_alive(pid):
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)  # the session: the supervisor and the ingester
        note = f"killed after {timeout_s:.0f} s (the lake and offsets stay consistent; a restart resumes)"
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
    state_file(settings).unlink(missing_ok=True)
    return {"stopped": True, "pid": pid, "restarts": state.get("restarts", 0), "note": note}


def stream_status(settings: Settings) -> dict[str, Any]:
    state = read_state(settings)
    running = _is_supervisor(state.get("pid"))
    child = state.get("child_pid")
    return {
        "running": running,
        "pid": state.get("pid"),
        "ingester_pid": child if running and isinstance(child, int) and is_alive(child) else None,
        "restarts": state.get("restarts", 0),
        "last_exit": state.get("last_exit"),
        "last_asset_event": state.get("last_asset_event"),
        "log": str(log_file(settings)),
    }


# ----------------------------------------------------------------------------- the supervisor itself


def progress_file(settings: Settings) -> Path:
    """What the running ingester has written to the lake so far (its own counts, updated each second)."""
    return settings.paths.run / "stream-progress.json"


def _accepted(settings: Settings) -> int:
    try:
        return int(json.loads(progress_file(settings).read_text()).get("accepted", 0))
    except (OSError, ValueError, AttributeError):
        return 0


def _publish_lake(settings: Settings, new_events: int) -> dict[str, Any] | None:
    """Post an `aisle_event_lake` asset event when Airflow runs; None when it does not (not an error)."""
    from aisle.app.airflow_client import client_for
    from aisle.core.assets import LAKE_ASSET
    from aisle.core.errors import AisleError

    try:
        event = client_for(settings).post_asset_event(
            LAKE_ASSET[1], {"source": "stream", "accepted": new_events}
        )
    except AisleError as exc:
        print(f"lake asset event not posted: {exc}", flush=True)
        return None
    return {"at": _now(), "id": event.get("id"), "accepted": new_events}


def ingest(settings: Settings) -> int:
    """The supervised child: the `ingest.stream` job, unbounded, stopped by SIGTERM after a commit."""
    from aisle.app.jobs import ingest as ingest_jobs
    from aisle.core.console import emit_summary
    from aisle.core.logs import background_logging

    background_logging()
    last = [0.0]

    def on_progress(counts: Any) -> None:
        if time.monotonic() - last[0] >= 1.0:
            last[0] = time.monotonic()
            write_json(
                progress_file(settings), {"accepted": counts.accepted, "read": counts.read, "at": _now()}
            )

    params = ingest_jobs.StreamParams()
    summary = ingest_jobs.stream(settings, params, stop=ingest_jobs.stop_on_signals(), progress=on_progress)
    write_json(progress_file(settings), {"accepted": summary.get("accepted", 0), "at": _now(), "done": True})
    emit_summary("ingest.stream", summary)
    return 0


def supervise(settings: Settings) -> int:
    """Run the ingester until SIGTERM/SIGINT, restarting it with backoff when it exits on its own."""
    stopping = [False]
    child: list[subprocess.Popen[bytes] | None] = [None]

    def on_signal(_signum: int, _frame: Any) -> None:
        stopping[0] = True
        if child[0] is not None and child[0].poll() is None:
            child[0].send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    state: dict[str, Any] = {"pid": os.getpid(), "restarts": 0, "started_at": _now()}
    failures = 0
    earlier = published = 0  # events accepted by previous ingesters; events announced to Airflow
    published_at = time.monotonic()
    command = [sys.executable, "-m", "aisle.app.stream_supervisor", "ingest"]
    while not stopping[0]:
        progress_file(settings).unlink(missing_ok=True)
        with log_file(settings).open("ab") as out:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        child[0] = proc
        started = time.monotonic()
        state.update(child_pid=proc.pid, child_started_at=_now())
        _write_state(settings, state)
        while proc.poll() is None:
            time.sleep(0.5)
            total = earlier + _accepted(settings)
            if total > published and time.monotonic() - published_at >= settings.stream_publish_seconds:
                published_at = time.monotonic()
                if (event := _publish_lake(settings, total - published)) is not None:
                    published = total
                    state["last_asset_event"] = event
                    _write_state(settings, state)
        earlier += _accepted(settings)
        state["last_exit"] = {"code": proc.returncode, "at": _now()}
        if stopping[0]:
            break
        failures = 0 if time.monotonic() - started >= HEALTHY_AFTER_S else failures + 1
        delay = min(BACKOFF_MAX_S, 2.0 ** max(failures - 1, 0))
        state["restarts"] += 1
        print(f"ingester exited with code {proc.returncode}; restarting in {delay:.0f} s", flush=True)
        _write_state(settings, state)
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline and not stopping[0]:
            time.sleep(0.2)
    state["child_pid"] = None
    _write_state(settings, state)
    return 0


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def main() -> None:
    from aisle.core.settings import get_settings

    role = sys.argv[1] if len(sys.argv) > 1 else "supervise"
    sys.exit(ingest(get_settings()) if role == "ingest" else supervise(get_settings()))


if __name__ == "__main__":
    main()
