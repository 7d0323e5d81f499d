"""Starting the servers Aisle runs in the background, and saying why one did not come up.

Redis, the Kafka-protocol broker, the Airflow components, MLflow, the Data Docs server, the Evidently
UI and the recommendation service are all started the same way: detached into a session of their own
(so they outlive the `aisle` command that started them, and a stop takes their workers with them),
output into one log file, then polled until they answer. When one dies or stays silent, the error
names the log and quotes its last lines.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from aisle.core.errors import ServiceUnavailable

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def log_tail(path: Path, lines: int = 6) -> str:
    """The last non-blank lines of a log, colour codes removed, joined by `` | `` ("" if unreadable)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    tail = [_ANSI.sub("", line).strip() for line in text.splitlines() if line.strip()][-lines:]
    return " | ".join(tail)


def launch_detached(
    command: Sequence[str],
    log: Path,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    append: bool = False,
) -> subprocess.Popen[bytes]:
    """Start ``command`` in its own session with stdout and stderr into ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab" if append else "wb") as out:
        return subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            start_new_session=True,
            close_fds=True,
        )


def wait_answering(
    proc: subprocess.Popen[bytes],
    answers: Callable[[], bool],
    *,
    what: str,
    where: str,
    log: Path,
    timeout_s: float,
    stop: Callable[[int], None],
    poll_s: float = 0.5,
) -> None:
    """Poll ``answers`` until it is true; if ``proc`` exits first, or ``timeout_s`` passes (then
    ``stop(pid)``), raise ServiceUnavailable naming ``what``, ``where`` and the log."""
    deadline = time.monotonic() + timeout_s
    while not answers():
        if proc.poll() is not None:
            tail = log_tail(log)
            raise ServiceUnavailable(
                f"{what} exited with code {proc.returncode} right after start (log {log})"
                + (f": {tail}" if tail else "")
            )
        if time.monotonic() > deadline:
            stop(proc.pid)
            raise ServiceUnavailable(f"{what} did not answer at {where} within {timeout_s:.0f}s; see {log}")
        time.sleep(poll_s)
