"""Where the services are: the one answer every stage asks for (Redis URL, Kafka bootstrap servers).

An explicit setting (``AISLE_REDIS_URL``, ``AISLE_KAFKA_BOOTSTRAP``) always wins; otherwise the address
of the embedded server recorded in ``$AISLE_HOME/run/services.json`` by the supervisor
(``aisle.app.services``). Stages read addresses here and never import the supervisor, which is
application code; this module only reads that file and checks that the recorded process still runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Final

from aisle.core.errors import ServiceUnavailable
from aisle.core.settings import Settings

SERVICE_NAMES: Final = ("redis", "kafka")
#: State files (under ``$AISLE_HOME/run``) in which the application records the web UIs it started
#: with the ``url`` each answers at (``ui`` holds one entry per UI `aisle ui` serves: mlflow, docs);
#: stages read them to link to the UIs, never to start or stop them.
UI_STATE_FILES: Final = {"airflow": "airflow.json", "evidently": "evidently_ui.json", "ui": "ui.json"}
#: The services-file key that holds each service's address.
ADDRESS_KEYS: Final = {"redis": "url", "kafka": "bootstrap"}


def read_state(settings: Settings) -> dict[str, dict[str, Any]]:
    """The recorded services; a missing or unreadable file means nothing is recorded."""
    path = settings.paths.services_file
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if k in SERVICE_NAMES and isinstance(v, dict)}


def _proc_state(pid: int) -> str | None:
    """The kernel's process state letter, or None when no such process exists (Linux /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name in field 2 may hold spaces and parentheses; the state follows the last ')'.
    return stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else None


def is_alive(pid: int) -> bool:
    if Path("/proc").is_dir():
        state = _proc_state(pid)
        return state is not None and state not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_our_server(entry: dict[str, Any]) -> bool:
    """Whether the recorded pid still runs the recorded binary on the recorded port.

    Pids are reused after a reboot or a crash; killing whatever now holds the number would be wrong,
    so both the executable and the port in its command line must match.
    """
    pid, binary, port = entry.get("pid"), entry.get("binary"), entry.get("port")
    if not isinstance(pid, int) or pid <= 0 or not binary or not is_alive(pid):
        return False
    proc = Path(f"/proc/{pid}")
    try:
        exe = os.readlink(proc / "exe")
    except OSError:
        exe = None
    try:
        cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        cmdline = _ps_command(pid)
    if exe is not None and Path(exe) != Path(binary):
        return False
    if exe is None and Path(binary).name not in cmdline:
        return False
    return port is None or str(port) in cmdline


def _ps_command(pid: int) -> str:
    """Command line via ``ps`` where there is no /proc (macOS)."""
    try:
        done = subprocess.run(
            ["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip()


def explicit_address(settings: Settings, name: str) -> str | None:
    """The address configured in settings for service ``name`` (None: the embedded one is meant)."""
    value: str | None = settings.redis_url if name == "redis" else settings.kafka_bootstrap
    return value


def _resolve(settings: Settings, name: str) -> str:
    explicit = explicit_address(settings, name)
    if explicit:
        return explicit
    key = ADDRESS_KEYS[name]
    setting = f"AISLE_{'REDIS_URL' if name == 'redis' else 'KAFKA_BOOTSTRAP'}"
    recorded = read_state(settings).get(name)
    if recorded is None or not recorded.get(key):
        raise ServiceUnavailable(
            f"no {name} is configured: set {setting} or run `aisle services up` "
            f"(looked in {settings.paths.services_file})"
        )
    if recorded.get("managed") and not is_our_server(recorded):
        raise ServiceUnavailable(
            f"the embedded {name} recorded in {settings.paths.services_file} (pid {recorded.get('pid')}) "
            "is no longer running; run `aisle services up`"
        )
    return str(recorded[key])


def redis_url(settings: Settings) -> str:
    """The Redis URL everything else should use: the explicit setting, else the embedded server."""
    return _resolve(settings, "redis")


def kafka_bootstrap(settings: Settings) -> str:
    """The bootstrap servers everything else should use: the explicit setting, else the embedded broker."""
    return _resolve(settings, "kafka")


def recorded_ui_url(settings: Settings, name: str) -> str | None:
    """The URL recorded for UI ``name`` (airflow, evidently, or one `aisle ui` serves: mlflow, docs),
    or None when none is recorded. Whether it still answers is the caller's question."""
    file = UI_STATE_FILES.get(name, UI_STATE_FILES["ui"])
    try:
        data = json.loads((settings.paths.run / file).read_text())
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and name not in UI_STATE_FILES:
        data = data.get(name)
    url = data.get("url") if isinstance(data, dict) else None
    return str(url) if url else None


def answers(url: str, timeout_s: float = 3.0) -> bool:
    """Whether an HTTP GET of ``url`` gets a response below 500 now (a login page counts); never raises."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return int(response.status) < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except (OSError, ValueError):
        return False
