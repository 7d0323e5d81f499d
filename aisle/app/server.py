"""Start and stop the recommendation service (``bentoml serve serving.service:Aisle``) as a process.

Used by ``aisle serve`` (foreground), ``aisle demo`` (left running, recorded in
``$AISLE_HOME/run/serving.json`` so ``aisle services down`` stops it), the tests and the benchmark.

BentoML facts that shape this (1.4.39, measured): the serve process becomes a ``circusd`` parent whose
workers are fresh interpreters in their own sessions, so a process-group kill misses them; SIGTERM to
the parent stops everything cleanly in under a second, whereas SIGKILL leaves the workers serving the
port. So: SIGTERM first, then kill the remembered worker pids if any survived.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from aisle.app.processes import log_tail
from aisle.core.errors import AisleError, BadInput
from aisle.core.settings import ENV_PREFIX, Settings, child_env, ensure_home, process_env

SERVICE = "serving.service:Aisle"
ROOT = Path(__file__).resolve().parents[2]
STATE_FILE = "serving.json"


def _bentoml() -> list[str]:
    return [sys.executable, "-m", "bentoml"]


def service_command(port: int, workers: int = 1, threads: int = 1, host: str = "127.0.0.1") -> list[str]:
    return [
        *_bentoml(),
        "serve",
        SERVICE,
        "--port",
        str(port),
        "--host",
        host,
        "--working-dir",
        str(ROOT),
        "--arg",
        f"workers={workers}",
        "--arg",
        f"threads={threads}",
    ]


def settings_env(settings: Settings) -> dict[str, str | None]:
    """Every setting as its ``AISLE_*`` variable (None: unset, so the default applies), so the service's
    workers, which read the environment, get exactly the settings this process holds."""
    from pydantic import SecretStr

    out: dict[str, str | None] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        out[f"{ENV_PREFIX}{name.upper()}"] = None if value is None else str(value)
    out[f"{ENV_PREFIX}HOME"] = str(settings.paths.home)  # absolute: workers may start elsewhere
    return out


def service_env(settings: Settings, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of the serve process: the settings, the libraries' switches, no usage tracking."""
    changes: dict[str, str | None] = {**process_env(settings), "BENTOML_DO_NOT_TRACK": "true"}
    # a request multiplies ~150-row matrices (the numpy ranker and user tower): OpenBLAS splitting them
    # over threads cost 3-10x on a busy 2-core machine; workers are the parallelism (set it to override)
    changes.update(settings_env(settings))
    changes.update(extra or {})
    env = child_env(changes)
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    return env


def _get(url: str, timeout_s: float = 2.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError):
        return 0


@dataclass
class ServiceProcess:
    """A running service. ``workers`` are remembered while the parent lives (see the module docstring)."""

    process: subprocess.Popen[bytes]
    url: str
    log_path: Path
    workers: list[int] = field(default_factory=list)
    ready_seconds: float | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def remember_workers(self) -> list[int]:
        import psutil

        with contextlib.suppress(psutil.Error):
            self.workers = [c.pid for c in psutil.Process(self.pid).children(recursive=True)]
        return self.workers

    def _log_tail(self) -> str:
        return log_tail(self.log_path, 8) or "(no log)"

    def wait_ready(self, timeout_s: float) -> float:
        """Seconds until ``/readyz`` answered 200; AisleError (with the log's tail) if it never does."""
        started = time.perf_counter()
        while time.perf_counter() - started < timeout_s:
            if self.process.poll() is not None:
                raise AisleError(
                    f"the service exited with code {self.process.returncode}: {self._log_tail()}"
                )
            if _get(f"{self.url}/readyz") == 200:
                self.ready_seconds = time.perf_counter() - started
                self.remember_workers()
                return self.ready_seconds
            time.sleep(0.2)
        raise AisleError(
            f"the service at {self.url} was not ready after {timeout_s:.0f} s: {self._log_tail()}"
        )

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM, wait, then kill any worker that outlived its parent. Returns the exit code."""
        self.remember_workers()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        kill_leftovers(self.workers)
        return self.process.returncode


def kill_leftovers(pids: list[int]) -> None:
    """Kill service workers that outlived their parent; a pid now used by another program is left alone."""
    import psutil

    for pid in pids:
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            if proc.status() != psutil.STATUS_ZOMBIE and "bentoml" in " ".join(proc.cmdline()):
                proc.kill()


def check_port(port: int, host: str = "127.0.0.1") -> None:
    import socket

    if not 1 <= port <= 65535:
        raise BadInput(f"--port must be between 1 and 65535 (got {port})")
    probe = "127.0.0.1" if host in ("0.0.0.0", "") else host
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        if sock.connect_ex((probe, port)) == 0:
            raise BadInput(f"port {port} is already in use on {host}; choose another with --port")


def preflight(settings: Settings, port: int, workers: int, threads: int, host: str = "127.0.0.1") -> None:
    """Everything that would make the service fail at start, as one clear sentence before it starts."""
    from serving.rules import load_rules, rules_path

    if workers < 1 or workers > 64:
        raise BadInput(f"--workers must be between 1 and 64 (got {workers})")
    if threads < 1 or threads > 64:
        raise BadInput(f"--threads must be between 1 and 64 (got {threads})")
    ensure_home(settings)
    check_port(port, host)
    load_rules(rules_path(settings))  # a broken rules file is bad input, named


def start_service(
    settings: Settings,
    port: int,
    *,
    workers: int = 1,
    threads: int = 1,
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
) -> ServiceProcess:
    """Start the service in the background (its output to ``log_path``); call ``wait_ready`` next."""
    preflight(settings, port, workers, threads)
    log_path = log_path or settings.paths.run / f"serving-{port}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    out: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
    try:
        process = subprocess.Popen(
            service_command(port, workers, threads),
            cwd=str(ROOT),
            env=service_env(settings, env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        out.close()
    return ServiceProcess(process, f"http://127.0.0.1:{port}", log_path)


@contextlib.contextmanager
def running_service(
    settings: Settings,
    port: int,
    *,
    workers: int = 1,
    threads: int = 1,
    env: Mapping[str, str] | None = None,
    ready_timeout_s: float = 240.0,
) -> Iterator[ServiceProcess]:
    """A ready service for the length of a ``with`` block (tests, benchmark), stopped on exit."""
    service = start_service(settings, port, workers=workers, threads=threads, env=env)
    try:
        service.wait_ready(ready_timeout_s)
        yield service
    finally:
        service.stop()


# ----------------------------------------------------------------------------- foreground and detached


def serve_foreground(
    settings: Settings, port: int, workers: int, threads: int, host: str = "127.0.0.1"
) -> int:
    """``aisle serve``: run until Ctrl-C / SIGTERM, passing the signal on; returns the exit code."""
    preflight(settings, port, workers, threads, host)
    command = service_command(port, workers, threads, host)
    process = subprocess.Popen(command, cwd=str(ROOT), env=service_env(settings))

    def forward(signum: int, _frame: Any) -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return process.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def record_detached(settings: Settings, service: ServiceProcess) -> Path:
    """Remember a service left running (the demo's) so ``aisle services down`` can stop it."""
    path = settings.paths.run / STATE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pid": service.pid, "workers": service.workers, "url": service.url}))
    return path


def stop_detached(settings: Settings) -> dict[str, Any] | None:
    """Stop the service recorded by :func:`record_detached`; None when none is recorded."""
    import psutil

    path = settings.paths.run / STATE_FILE
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    pid = int(state.get("pid", 0))
    stopped = False
    with contextlib.suppress(psutil.Error):
        proc = psutil.Process(pid)
        if "bentoml" in " ".join(proc.cmdline()) or proc.name() == "circusd":
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
            stopped = True
    kill_leftovers([int(p) for p in state.get("workers", [])])
    path.unlink(missing_ok=True)
    return {"stopped": stopped, "pid": pid, "url": state.get("url")}
