"""Jobs: trigger a DAG on the running Airflow (REST API) and follow it; publish an asset event.

The CLI (`aisle dags trigger`), `aisle demo` and the monitoring triggers call these, so a run started
from anywhere is created the same way: Airflow checks its conf against the DAG's Params first, and the
run carries the reason it was started (``conf["reason"]``) into its jobs' summaries and MLflow.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aisle.app.jobs import parse_params
from aisle.core.errors import BadInput
from aisle.core.settings import Settings

#: Hears each task state change of a followed run: (task, state, seconds since the trigger).
TaskProgress = Callable[[str, str, float], None]


@dataclass(frozen=True)
class TriggerParams:
    dag_id: str = ""
    conf: dict[str, Any] = field(default_factory=dict)
    wait: bool = False
    timeout_s: float | None = None  # with wait: give up following after this long (the run goes on)
    reason: str | None = None  # why; stored in conf["reason"] (the DAGs record it)

    def __post_init__(self) -> None:
        if not self.dag_id:
            raise BadInput("a DAG id is required")
        if not isinstance(self.conf, dict):
            raise BadInput("conf must be a JSON object")


def trigger(
    settings: Settings, params: Any = None, *, progress: TaskProgress | None = None
) -> dict[str, Any]:
    """Trigger ``dag_id`` with ``conf``; with ``wait``, follow it to the end and report failed tasks.

    The summary's ``ok`` is False when the run failed; ``failures`` then holds each failed task with
    the last lines of its log.
    """
    from aisle.app.airflow_client import client_for, failures, follow_run

    p = parse_params(TriggerParams, params)
    conf = dict(p.conf)
    if p.reason:
        conf["reason"] = p.reason
    client = client_for(settings)
    known = client.dag_ids()
    if p.dag_id not in known:
        raise BadInput(f"no DAG named {p.dag_id!r}; known: {', '.join(sorted(known))}")
    if client.dag(p.dag_id).get("is_paused"):
        client.set_paused(p.dag_id, False)  # a paused DAG's run would sit queued forever
    started = time.perf_counter()
    run = client.trigger(p.dag_id, conf)
    run_id = str(run["dag_run_id"])
    summary: dict[str, Any] = {
        "dag_id": p.dag_id,
        "run_id": run_id,
        "conf": run.get("conf", conf),
        "url": f"{client.url}/dags/{p.dag_id}/runs/{run_id}",
        "state": run.get("state"),
    }
    if not p.wait:
        return summary

    def hear(task: str, state: str, _ti: dict[str, Any]) -> None:
        if progress is not None:
            progress(task, state, time.perf_counter() - started)

    followed = follow_run(client, p.dag_id, run_id, hear, timeout_s=p.timeout_s)
    state = str(followed["run"].get("state"))
    summary.update(
        state=state,
        tasks=followed["tasks"],
        seconds=round(time.perf_counter() - started, 3),
        ok=state == "success",
    )
    if state != "success":
        summary["failures"] = failures(client, p.dag_id, run_id)
    return summary


def follow(settings: Settings, params: Any = None, *, progress: TaskProgress | None = None) -> dict[str, Any]:
    """Wait for the next run of a DAG that something else starts (an asset event, a schedule).

    ``params``: ``dag_id``, ``after`` (ISO time: only runs queued after it), ``timeout_s``.
    """
    from aisle.app.airflow_client import client_for, failures, follow_run

    raw = dict(params or {})
    dag_id, after, timeout_s = str(raw["dag_id"]), str(raw.get("after", "")), float(raw.get("timeout_s", 600))
    client = client_for(settings)
    started = time.perf_counter()
    deadline = time.monotonic() + timeout_s
    run: dict[str, Any] | None = None
    since = _when(after) if after else None
    while run is None:
        newer = [r for r in client.runs(dag_id) if since is None or _when(r.get("queued_at")) > since]
        if newer:
            run = newer[-1]
            break
        if time.monotonic() > deadline:
            raise BadInput(f"no run of {dag_id} was started within {timeout_s:.0f} s; is the DAG paused?")
        time.sleep(1.0)
    run_id = str(run["dag_run_id"])

    def hear(task: str, state: str, _ti: dict[str, Any]) -> None:
        if progress is not None:
            progress(task, state, time.perf_counter() - started)

    followed = follow_run(client, dag_id, run_id, hear, timeout_s=max(deadline - time.monotonic(), 1.0))
    state = str(followed["run"].get("state"))
    summary: dict[str, Any] = {
        "dag_id": dag_id,
        "run_id": run_id,
        "run_type": followed["run"].get("run_type"),
        "state": state,
        "tasks": followed["tasks"],
        "url": f"{client.url}/dags/{dag_id}/runs/{run_id}",
        "seconds": round(time.perf_counter() - started, 3),
        "ok": state == "success",
    }
    if state != "success":
        summary["failures"] = failures(client, dag_id, run_id)
    return summary


def _when(stamp: Any) -> datetime:
    """An ISO timestamp as an aware datetime (Airflow writes ``Z``; Python ``+00:00``)."""
    if not stamp:
        return datetime.min.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))


@dataclass(frozen=True)
class AssetEventParams:
    uri: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def publish_asset(settings: Settings, params: Any = None) -> dict[str, Any]:
    """Record an asset event on the running Airflow (e.g. files dropped by a shop's export job)."""
    from aisle.app.airflow_client import client_for

    p = parse_params(AssetEventParams, params)
    if not p.uri:
        raise BadInput("an asset URI is required")
    event = client_for(settings).post_asset_event(p.uri, p.extra)
    return {"uri": p.uri, "event_id": event.get("id"), "timestamp": event.get("timestamp")}
