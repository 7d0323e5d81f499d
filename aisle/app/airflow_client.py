"""A small client of the running Airflow's REST API (v2): trigger with conf, follow a run, read logs.

Plain ``urllib`` on purpose: the calls are a handful of JSON requests, and the CLI must not import
Airflow itself (seconds of start-up) just to talk to it. Errors become one sentence: a refused conf
(the Param's own message, HTTP 400) is bad input (exit 2); an unreachable server says how to start it.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from aisle.core.errors import AisleError, BadInput, ServiceUnavailable
from aisle.core.settings import Settings

FINISHED: Final = ("success", "failed")
#: Task states after which a task will not run again in this run.
TASK_DONE: Final = ("success", "failed", "skipped", "upstream_failed", "removed")


def _quote(value: str) -> str:
    return urllib.parse.quote(value, safe="")


@dataclass
class AirflowClient:
    url: str
    username: str
    password: str
    timeout_s: float = 30.0
    _token: str | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ transport

    def _send(self, method: str, path: str, body: Any = None, auth: bool = True) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if auth:
            request.add_header("Authorization", f"Bearer {self.token()}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise _http_error(exc, method, path) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ServiceUnavailable(
                f"Airflow does not answer at {self.url} ({reason}); start it with `aisle airflow up`"
            ) from None
        return json.loads(raw) if raw else None

    def token(self) -> str:
        if self._token is None:
            answer = self._send(
                "POST", "/auth/token", {"username": self.username, "password": self.password}, auth=False
            )
            self._token = str(answer["access_token"])
        return self._token

    # ------------------------------------------------------------------ DAGs and runs

    def dag_ids(self) -> list[str]:
        answer = self._send("GET", "/api/v2/dags?limit=1000")
        return [str(d["dag_id"]) for d in answer.get("dags", [])]

    def dag(self, dag_id: str) -> dict[str, Any]:
        return dict(self._send("GET", f"/api/v2/dags/{_quote(dag_id)}"))

    def import_errors(self) -> list[dict[str, Any]]:
        return list(self._send("GET", "/api/v2/importErrors").get("import_errors", []))

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self._send("PATCH", f"/api/v2/dags/{_quote(dag_id)}?update_mask=is_paused", {"is_paused": paused})

    def trigger(
        self, dag_id: str, conf: dict[str, Any], run_id: str | None = None, note: str | None = None
    ) -> dict[str, Any]:
        """Create a run; Airflow checks ``conf`` against the DAG's Params first and refuses bad values."""
        body: dict[str, Any] = {
            "logical_date": None,
            "dag_run_id": run_id or f"manual__aisle_{time.strftime('%Y%m%dT%H%M%S')}_{uuid.uuid4().hex[:6]}",
            "conf": conf,
        }
        if note:
            body["note"] = note
        return dict(self._send("POST", f"/api/v2/dags/{_quote(dag_id)}/dagRuns", body))

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return dict(self._send("GET", f"/api/v2/dags/{_quote(dag_id)}/dagRuns/{_quote(run_id)}"))

    def runs(self, dag_id: str, limit: int = 20) -> list[dict[str, Any]]:
        answer = self._send("GET", f"/api/v2/dags/{_quote(dag_id)}/dagRuns?limit={limit}&order_by=-run_after")
        return list(answer.get("dag_runs", []))

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        answer = self._send(
            "GET", f"/api/v2/dags/{_quote(dag_id)}/dagRuns/{_quote(run_id)}/taskInstances?limit=1000"
        )
        return list(answer.get("task_instances", []))

    def task_log(
        self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1
    ) -> list[dict[str, Any]]:
        path = (
            f"/api/v2/dags/{_quote(dag_id)}/dagRuns/{_quote(run_id)}/taskInstances/{_quote(task_id)}"
            f"/logs/{try_number}?full_content=true&map_index={map_index}"
        )
        content = self._send("GET", path).get("content", [])
        return [c for c in content if isinstance(c, dict)]

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        path = (
            f"/api/v2/dags/{_quote(dag_id)}/dagRuns/{_quote(run_id)}/taskInstances/{_quote(task_id)}"
            f"/xcomEntries/{_quote(key)}?deserialize=true"
        )
        return self._send("GET", path).get("value")

    def _asset_id(self, uri: str) -> int:
        assets = self._send("GET", f"/api/v2/assets?uri_pattern={_quote(uri)}&limit=100").get("assets", [])
        match = [a for a in assets if a.get("uri") == uri]
        if not match:
            raise AisleError(f"Airflow knows no asset {uri}; is a DAG that uses it parsed?")
        return int(match[0]["id"])

    def asset_events(self, uri: str) -> list[dict[str, Any]]:
        """Events of one asset, newest first (who published it, when, with which extra)."""
        path = f"/api/v2/assets/events?asset_id={self._asset_id(uri)}&order_by=-timestamp&limit=100"
        return list(self._send("GET", path).get("asset_events", []))

    def upstream_asset_events(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        answer = self._send(
            "GET", f"/api/v2/dags/{_quote(dag_id)}/dagRuns/{_quote(run_id)}/upstreamAssetEvents"
        )
        return list(answer.get("asset_events", []))

    def post_asset_event(self, uri: str, extra: dict[str, Any]) -> dict[str, Any]:
        """Tell Airflow an Asset changed outside any DAG (what schedules the DAGs that wait for it)."""
        body = {"asset_id": self._asset_id(uri), "extra": extra}
        return dict(self._send("POST", "/api/v2/assets/events", body))


def _http_error(exc: urllib.error.HTTPError, method: str, path: str) -> AisleError:
    try:
        detail: Any = json.loads(exc.read() or b"{}").get("detail", "")
    except ValueError:
        detail = ""
    if isinstance(detail, list):  # FastAPI's validation errors
        detail = "; ".join(f"{'.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}" for d in detail)
    text = str(detail).split("\n\n")[0].strip() or exc.reason
    if exc.code == 401:
        return ServiceUnavailable(f"Airflow refused the login ({text}); see `aisle airflow status`")
    if exc.code == 404:
        return BadInput(f"Airflow has no such resource ({path.split('?')[0]}): {text}")
    if exc.code in (400, 409, 422):
        return BadInput(f"Airflow refused the request: {text}")
    return AisleError(f"Airflow answered {exc.code} to {method} {path.split('?')[0]}: {text}")


def client_for(settings: Settings) -> AirflowClient:
    """A client of this home's running Airflow, logged in as the generated admin user."""
    from aisle.app.airflow_server import USERNAME, running_url, ui_password

    url = running_url(settings)
    password = ui_password(settings)
    if url is None or password is None:
        raise ServiceUnavailable(
            f"Airflow is not running for AISLE_HOME={settings.paths.home}; start it with `aisle airflow up`"
        )
    return AirflowClient(url, USERNAME, password)


def _task_key(ti: dict[str, Any]) -> str:
    index = ti.get("map_index", -1)
    return str(ti["task_id"]) if index in (-1, None) else f"{ti['task_id']}[{index}]"


def follow_run(
    client: AirflowClient,
    dag_id: str,
    run_id: str,
    on_change: Callable[[str, str, dict[str, Any]], None] | None = None,
    *,
    poll_s: float = 1.0,
    timeout_s: float | None = None,
) -> dict[str, Any]:
    """Poll a run until it finishes; ``on_change(task, state, ti)`` hears every task state change."""
    seen: dict[str, str] = {}
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        run = client.run(dag_id, run_id)
        for ti in client.task_instances(dag_id, run_id):
            key, state = _task_key(ti), str(ti.get("state") or "none")
            if seen.get(key) != state:
                first = key not in seen
                seen[key] = state
                if on_change is not None and not (first and state == "none"):  # not scheduled yet
                    on_change(key, state, ti)
        if run.get("state") in FINISHED:
            return {"run": run, "tasks": seen}
        if deadline is not None and time.monotonic() > deadline:
            raise AisleError(
                f"run {run_id} of {dag_id} is still {run.get('state')} after {timeout_s:.0f} s; "
                f"follow it in the UI at {client.url}"
            )
        time.sleep(poll_s)


def log_lines(entries: list[dict[str, Any]]) -> list[str]:
    """Task log entries as readable lines; an exception's type and message on its own line."""
    lines = []
    for entry in entries:
        event = str(entry.get("event", ""))
        if event.startswith("::"):
            continue
        level = str(entry.get("level", "")).upper()
        lines.append(f"{level:7} {event}".rstrip() if level else event)
        for detail in entry.get("error_detail") or []:
            if isinstance(detail, dict):
                lines.append(f"        {detail.get('exc_type')}: {detail.get('exc_value')}")
    return lines


def failures(client: AirflowClient, dag_id: str, run_id: str, tail: int = 15) -> list[dict[str, Any]]:
    """The failed tasks of a run with the last lines of the log of their last try."""
    found = []
    for ti in client.task_instances(dag_id, run_id):
        if ti.get("state") != "failed":
            continue
        tries = int(ti.get("try_number") or 1)
        try:
            lines = log_lines(
                client.task_log(dag_id, run_id, str(ti["task_id"]), tries, int(ti.get("map_index", -1)))
            )
        except AisleError as exc:
            lines = [f"(log not readable: {exc})"]
        found.append({"task": _task_key(ti), "try_number": tries, "log_tail": lines[-tail:]})
    return found
