"""How a DAG task runs a job: typed Params from the job's own defaults, the run's reason, the log.

DAG files stay wiring only; what every task needs lives here, once:

* ``dag_params`` builds the trigger form (``Param``s) from a job's params dataclass: each default is
  the dataclass's default, each type its annotation, so the UI, the REST API and ``aisle dags trigger``
  refuse a bad value before a run exists, and nobody re-types a number the code already holds.
* ``run_reason`` says why the run exists (asset event, schedule, manual, trigger) from the run itself.
* ``run_job`` logs the job's progress into the task log, ends the log with the JSON summary, adds the
  reason to the summary, and says what to do when the job fails. Bad input fails at once (retrying
  cannot fix it); anything else is retried with exponential backoff (``default_args``).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import time
import types
import typing
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from aisle.core.errors import BadInput, JobFailed

log = logging.getLogger("aisle.task")

#: Libraries whose info-level chatter would bury the job's own progress in a task log.
NOISY_LOGGERS = ("great_expectations", "py4j", "feast", "kafka", "mlflow", "urllib3", "absl", "tensorflow")

REASON_DESCRIPTION = (
    "Why you start this run (kept in the jobs' summaries and MLflow tags); "
    "asset-triggered and scheduled runs record their own reason"
)


def default_args(retries: int = 2, first_delay_s: float = 30.0) -> dict[str, Any]:
    """Retries with exponential backoff (30 s, 60 s, ... at most 10 min) for every Aisle task."""
    return {
        "retries": retries,
        "retry_delay": timedelta(seconds=first_delay_s),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=10),
    }


def _json_type(annotation: Any) -> tuple[list[str], dict[str, Any]]:
    """JSON-schema type(s) for a dataclass field annotation (the Param's ``type``) and extra keys."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        kinds: list[str] = []
        extra: dict[str, Any] = {}
        for arg in typing.get_args(annotation):
            sub, more = (["null"], {}) if arg is type(None) else _json_type(arg)
            kinds += [k for k in sub if k not in kinds]
            extra.update(more)
        return kinds, extra
    if origin in (tuple, list):
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        items = _json_type(args[0])[0] if args else ["string"]
        return ["array"], {"items": {"type": items[0] if len(items) == 1 else items}}
    if origin is dict or annotation is dict:
        return ["object"], {}
    simple = {bool: "boolean", int: "integer", float: "number", str: "string"}
    if annotation in simple:
        return [simple[annotation]], {}
    raise TypeError(f"no JSON type for {annotation!r}")


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def dag_params(
    cls: type,
    describe: Mapping[str, str | tuple[str, dict[str, Any]]],
    *,
    defaults: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The DAG's ``params``: one ``Param`` per field named in ``describe``, plus ``reason``.

    ``describe`` maps a field to its description, or to ``(description, schema)`` where the schema adds
    bounds (``minimum``, ``enum``...) that the UI shows and the API enforces. The default comes from the
    dataclass unless ``defaults`` overrides it for this DAG (say why where you do).
    """
    from airflow.sdk import Param

    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    params: dict[str, Any] = {}
    for name, text in describe.items():
        if name not in fields:
            raise TypeError(f"{cls.__name__} has no field {name!r}")
        description, schema = (text, {}) if isinstance(text, str) else text
        f = fields[name]
        if defaults and name in defaults:
            default = defaults[name]
        elif f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            raise TypeError(f"{cls.__name__}.{name} has no default")
        kinds, extra = _json_type(hints[name])
        kind: str | list[str] = kinds[0] if len(kinds) == 1 else kinds
        params[name] = Param(_jsonable(default), type=kind, description=description, **{**extra, **schema})
    params["reason"] = Param("", type="string", description=REASON_DESCRIPTION)
    return params


def job_params(params: Mapping[str, Any] | None, cls: type) -> dict[str, Any]:
    """The run's params that ``cls`` takes (drops ``reason`` and anything the form adds)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in dict(params or {}).items() if k in names}


# ----------------------------------------------------------------------------- the run's reason


def _value(x: Any) -> str:
    return str(getattr(x, "value", x) or "")


def run_reason(context: Mapping[str, Any]) -> dict[str, Any]:
    """Why this run exists: ``kind`` (asset, schedule, backfill, trigger, test, manual) and detail.

    ``trigger`` is a run started with a stated reason (``conf["reason"]``: the monitoring job after
    drift, a script, or a person who said why) or by another DAG; ``manual`` one started by hand
    without a reason; ``test`` an in-process ``dag.test()``.
    """
    run = context.get("dag_run")
    run_type = _value(getattr(run, "run_type", "")) if run is not None else ""
    user = getattr(run, "triggering_user_name", None) if run is not None else None
    conf = dict(getattr(run, "conf", None) or {}) if run is not None else {}
    stated = str(conf.get("reason") or (context.get("params") or {}).get("reason") or "").strip()
    reason: dict[str, Any] = {"run_id": getattr(run, "run_id", None), "run_type": run_type}
    if run_type == "asset_triggered":
        sources = []
        for asset, events in dict(context.get("triggering_asset_events") or {}).items():
            for event in events:
                origin = event.source_dag_id
                sources.append(
                    {
                        "asset": getattr(asset, "name", None) or str(asset),
                        "from": f"{origin}/{event.source_run_id}" if origin else "outside Airflow (REST API)",
                        "extra": dict(event.extra or {}),
                    }
                )
        detail = "; ".join(f"{s['asset']} from {s['from']}" for s in sources) or "an asset event"
        reason.update(kind="asset", detail=detail, events=sources)
    elif run_type == "scheduled":
        reason.update(kind="schedule", detail=f"scheduled run {reason['run_id']}")
    elif run_type == "backfill":
        reason.update(kind="backfill", detail=stated or "backfill")
    elif stated or run_type == "operator_triggered":
        reason.update(kind="trigger", detail=stated or "triggered by another DAG", by=user)
    elif user == "dag_test":
        reason.update(kind="test", detail="dag.test() in process")
    else:
        reason.update(kind="manual", detail=f"started by {user or 'someone'} without a reason", by=user)
    if stated and reason["kind"] in ("asset", "schedule"):
        reason["detail"] += f"; {stated}"
    return reason


def reason_text(reason: Mapping[str, Any]) -> str:
    """One line, ``kind: detail`` (the MLflow tag ``aisle.reason``)."""
    return f"{reason.get('kind')}: {reason.get('detail')}"


# ----------------------------------------------------------------------------- running a job


def _progress_logger(job: str, every_s: float = 5.0) -> Callable[..., None]:
    """A progress hook for any job: stage names always, counters at most every ``every_s`` seconds."""
    last = [0.0]

    def hook(*args: Any) -> None:
        now = time.monotonic()
        if len(args) == 1 and isinstance(args[0], str):
            log.info("%s progress: %s", job, args[0])
            last[0] = now
            return
        if now - last[0] >= every_s:
            shown = [vars(a) if hasattr(a, "__dict__") else a for a in args]
            log.info("%s progress: %s", job, " ".join(str(s) for s in shown))
            last[0] = now

    return hook


def current_context() -> Mapping[str, Any]:
    from airflow.sdk import get_current_context

    return get_current_context()


def current_reason() -> str:
    """``kind: detail`` of the running task's DAG run (what a job records, e.g. in MLflow)."""
    return reason_text(run_reason(current_context()))


def set_outlet_extra(asset: Any, extra: Mapping[str, Any]) -> None:
    """Attach facts (counts, versions) to the asset event this task publishes on success."""
    current_context()["outlet_events"][asset].extra = json.loads(json.dumps(dict(extra), default=str))


def run_job(
    job: Callable[..., dict[str, Any]],
    params: Any,
    context: Mapping[str, Any] | None = None,
    *,
    name: str | None = None,
) -> dict[str, Any]:
    """Run ``job(settings, params)`` inside a task: progress and summary in the log, reason attached."""
    from airflow.sdk.exceptions import AirflowFailException

    from aisle.core.settings import get_settings

    context = context if context is not None else current_context()
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    label = str(name or getattr(job, "__name__", "job"))
    reason = run_reason(context)
    log.info("%s starts (%s); params %s", label, reason_text(reason), json.dumps(params, default=str))
    kwargs = {"progress": _progress_logger(label)} if "progress" in inspect.signature(job).parameters else {}
    started = time.perf_counter()
    try:
        summary = job(get_settings(), params, **kwargs)
    except (BadInput, JobFailed) as exc:
        if isinstance(exc, JobFailed):
            log.info("%s summary: %s", label, json.dumps(exc.summary, default=str))
        log.error(
            "%s %s: %s. What to do: the same input fails the same way, so there is no retry; fix the "
            "input (or the conf) and trigger the DAG again (`aisle dags trigger %s --conf ...`).",
            label,
            "refused its input" if isinstance(exc, BadInput) else "did not do what was asked",
            exc,
            getattr(context.get("dag"), "dag_id", "DAG_ID"),
        )
        raise AirflowFailException(str(exc)) from None
    except Exception as exc:
        ti = context.get("ti")
        left = max(int(getattr(ti, "max_tries", 0) or 0) - int(getattr(ti, "try_number", 1) or 1) + 1, 0)
        log.error(
            "%s failed: %s: %s. What to do: %s read the error above; if a service is down run "
            "`aisle services status` / `aisle airflow status`, fix it, then clear this task in the UI "
            "(or trigger the DAG again).",
            label,
            type(exc).__name__,
            exc,
            f"Airflow retries it {left} more time(s) with backoff;" if left else "no retries are left;",
        )
        raise
    summary = {**summary, "reason": reason}
    summary.setdefault("seconds", round(time.perf_counter() - started, 3))
    log.info("%s summary: %s", label, json.dumps(summary, default=str))
    return summary
