"""The Evidently UI over ``$AISLE_HOME/monitoring/workspace``: start it, find it, stop it.

``aisle monitor ui`` and ``aisle demo`` use this; so can ``aisle ui evidently``: :func:`start_ui` returns
the running UI when there is one (recorded in ``$AISLE_HOME/run/evidently_ui.json`` and still answering)
and starts one otherwise, detached, on a free port, with telemetry off. :func:`stop_ui` stops only the
process it recorded, after checking it is still that UI (a reused pid is left alone).
"""

from __future__ import annotations

import json
import sys
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aisle.app.processes import launch_detached, wait_answering
from aisle.app.services import _terminate, free_port
from aisle.core.endpoints import UI_STATE_FILES, is_alive
from aisle.core.errors import BadInput, ServiceUnavailable
from aisle.core.settings import Settings, aisle_child_env, ensure_home

HOST = "127.0.0.1"
START_TIMEOUT_S = 120.0


def state_file(settings: Settings) -> Path:
    return settings.paths.run / UI_STATE_FILES["evidently"]


def _binary() -> Path:
    return Path(sys.executable).with_name("evidently")


def _answers(url: str, timeout_s: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/version", timeout=timeout_s) as response:
            return bool(json.loads(response.read()).get("application"))
    except (OSError, ValueError):
        return False


def _is_ours(entry: dict[str, Any]) -> bool:
    pid = entry.get("pid")
    if not isinstance(pid, int) or not is_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return True  # no /proc (macOS): the HTTP check below decides
    return "evidently" in cmdline and str(entry.get("port")) in cmdline


def find_ui(settings: Settings) -> dict[str, Any] | None:
    """The recorded UI if it still runs and answers, else None."""
    path = state_file(settings)
    try:
        entry = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not _is_ours(entry) or not _answers(entry["url"]):
        return None
    return {**entry, "started": False}


def ensure_projects(settings: Settings) -> Path:
    """The workspace with every concern's project and dashboard, so a fresh UI lists them all."""
    from monitoring.report import save_dashboards

    ensure_home(settings)
    save_dashboards(settings)
    return settings.paths.evidently_workspace


def start_ui(
    settings: Settings, port: int | None = None, timeout_s: float = START_TIMEOUT_S
) -> dict[str, Any]:
    """Find the running UI or start one; returns ``{url, pid, port, workspace, log, started}``."""
    running = find_ui(settings)
    if running is not None:
        if port is not None and running["port"] != port:
            raise BadInput(
                f"the Evidently UI already runs at {running['url']}; "
                "stop it first (`aisle monitor ui --stop`)"
            )
        return running
    binary = _binary()
    if not binary.is_file():
        raise ServiceUnavailable(f"the evidently command {binary} is missing; reinstall with `make setup`")
    workspace = ensure_projects(settings)
    chosen = port or free_port()
    url = f"http://{HOST}:{chosen}"
    log = settings.paths.run / "evidently_ui.log"
    command = [str(binary), "ui", "--workspace", str(workspace), "--host", HOST, "--port", str(chosen)]
    proc = launch_detached(command, log, env={**aisle_child_env(settings), "DO_NOT_TRACK": "1"})
    wait_answering(
        proc,
        lambda: _answers(url),
        what="the Evidently UI",
        where=url,
        log=log,
        timeout_s=timeout_s,
        stop=_terminate,
    )
    entry = {
        "url": url,
        "pid": proc.pid,
        "port": chosen,
        "workspace": str(workspace),
        "log": str(log),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    state_file(settings).write_text(json.dumps(entry, indent=1))
    return {**entry, "started": True}


def stop_ui(settings: Settings) -> dict[str, Any]:
    """Stop the recorded UI (only if it is still ours); says what it did."""
    path = state_file(settings)
    try:
        entry = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"stopped": False, "note": "no Evidently UI is recorded"}
    stopped = False
    if _is_ours(entry):
        _terminate(int(entry["pid"]))
        stopped = True
    path.unlink(missing_ok=True)
    return {"stopped": stopped, "pid": entry.get("pid"), "url": entry.get("url")}
