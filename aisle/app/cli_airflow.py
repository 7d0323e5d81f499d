"""Airflow commands: ``aisle airflow up|down|status`` and ``aisle dags trigger``.

Kept apart from ``aisle.app.cli`` so the base command stays small; ``register`` attaches them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Annotated, Any

import typer

from aisle.core.console import emit_summary, err_console
from aisle.core.errors import BadInput
from aisle.core.settings import Settings, get_settings

_STATE_STYLE = {
    "success": "green",
    "failed": "bold red",
    "upstream_failed": "red",
    "up_for_retry": "yellow",
    "running": "cyan",
    "skipped": "dim",
}


#: States a task passes through on its way to running: not worth a line each (a stage of the demo has
#: to fit one screen; a mapped task of seven would print up to 28 lines otherwise).
_WAITING = {"scheduled", "queued", "none"}


def print_task_change(task: str, state: str, seconds: float) -> None:
    """One line per task that starts or ends: how `--wait` and the demo show a run's progress."""
    if state in _WAITING:
        return
    style = _STATE_STYLE.get(state, "white")
    err_console.print(f"  {seconds:7.1f}s  {task:32} [{style}]{state}[/]", highlight=False)


def print_failures(summary: dict[str, Any]) -> None:
    for failure in summary.get("failures", []):
        err_console.print(
            f"[bold red]task {failure['task']} failed[/] (try {failure['try_number']}); last log lines:",
            highlight=False,
        )
        for line in failure["log_tail"]:
            err_console.print(f"    {line}", highlight=False, markup=False)


def print_login(info: dict[str, Any]) -> None:
    err_console.print(
        f"Airflow UI  {info['url']}   login: {info['username']} / {info['password']}",
        highlight=False,
        soft_wrap=True,
    )


def parse_conf(conf: str) -> dict[str, Any]:
    try:
        value = json.loads(conf)
    except json.JSONDecodeError as exc:
        raise BadInput(f"--conf is not valid JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise BadInput("--conf must be a JSON object")
    return value


def extras_up(settings: Settings, airflow: bool, stream: bool) -> dict[str, Any]:
    """`aisle services up --airflow --stream`: Airflow first (the ingester posts asset events to it)."""
    from aisle.app.airflow_server import airflow_up
    from aisle.app.stream_supervisor import stream_up

    extra: dict[str, Any] = {}
    if airflow:
        with err_console.status("starting Airflow"):
            extra["airflow"] = airflow_up(settings)
        print_login(extra["airflow"])
    if stream:
        extra["stream"] = stream_up(settings)
        err_console.print(f"stream  supervisor pid {extra['stream']['pid']}, log {extra['stream']['log']}")
    return extra


def extras_down(settings: Settings) -> dict[str, Any]:
    """Stop the stream ingester (it commits first), then Airflow, when `up` started them."""
    from aisle.app.airflow_server import airflow_down, read_state
    from aisle.app.stream_supervisor import stream_down

    stopped: dict[str, Any] = {"stream": stream_down(settings)}
    if read_state(settings).get("components"):
        stopped["airflow"] = airflow_down(settings)
    return stopped


def extras_status(settings: Settings) -> dict[str, Any]:
    """Airflow's and the stream ingester's entries in `aisle services status`, when they were started."""
    from aisle.app.airflow_server import airflow_status
    from aisle.app.airflow_server import read_state as airflow_state
    from aisle.app.stream_supervisor import read_state as stream_state
    from aisle.app.stream_supervisor import stream_status

    extra: dict[str, Any] = {}
    if airflow_state(settings).get("components"):
        info = airflow_status(settings)
        extra["airflow"] = info
    if stream_state(settings):
        info = stream_status(settings)
        extra["stream"] = {**info, "ok": info["running"]}
    return extra


def register(app: typer.Typer, dags_app: typer.Typer, handles_errors: Callable[[Any], Any]) -> None:
    """Attach ``aisle airflow ...`` and ``aisle dags trigger`` to the ``aisle`` app."""
    airflow_app = typer.Typer(help="Run Airflow's components (API server + UI, scheduler, DAG processor).")
    app.add_typer(airflow_app, name="airflow", no_args_is_help=True)

    @airflow_app.command("up")
    @handles_errors
    def airflow_up_cmd(
        port: Annotated[
            int | None, typer.Option(help="API server / UI port (default AISLE_AIRFLOW_PORT).")
        ] = None,
        triggerer: Annotated[
            bool | None,
            typer.Option(
                "--triggerer/--no-triggerer", help="Force the triggerer on or off (default: if a DAG defers)."
            ),
        ] = None,
    ) -> None:
        """Start the Airflow components under $AISLE_HOME/airflow and wait until the DAGs are parsed."""
        from aisle.app.airflow_server import airflow_up

        started = time.perf_counter()
        with err_console.status("starting Airflow (API server first, then scheduler and DAG processor)"):
            info = airflow_up(get_settings(), port=port, triggerer=triggerer)
        print_login(info)
        err_console.print(f"components  {', '.join(f'{n} ({p})' for n, p in info['components'].items())}")
        emit_summary("airflow.up", info, started)

    @airflow_app.command("down")
    @handles_errors
    def airflow_down_cmd() -> None:
        """Stop the components `aisle airflow up` started, with every process they started."""
        from aisle.app.airflow_server import airflow_down

        started = time.perf_counter()
        emit_summary("airflow.down", {"stopped": airflow_down(get_settings())}, started)

    @airflow_app.command("status")
    @handles_errors
    def airflow_status_cmd() -> None:
        """Each component's pid and health, the UI URL and its login."""
        from aisle.app.airflow_server import airflow_status

        info = airflow_status(get_settings())
        for name, comp in info["components"].items():
            state = "[green]healthy[/]" if comp["healthy"] else "[red]down[/]"
            err_console.print(f"{name:14} pid {comp['pid']}  {state}")
        if info["components"]:
            print_login(info)
        else:
            err_console.print(info["note"])
        emit_summary("airflow.status", info)
        if not info["ok"]:
            raise typer.Exit(1)

    @dags_app.command("trigger")
    @handles_errors
    def dags_trigger_cmd(
        dag_id: Annotated[str, typer.Argument(help="DAG id (= file name in dags/).")],
        conf: Annotated[str, typer.Option(help="Params as JSON, checked against the DAG's Params.")] = "{}",
        wait: Annotated[bool, typer.Option(help="Follow the run, task by task; exit 1 if it fails.")] = False,
        reason: Annotated[
            str | None, typer.Option(help="Why you start it (recorded in summaries and MLflow).")
        ] = None,
        timeout: Annotated[
            float | None, typer.Option(help="With --wait: stop following after this many seconds.")
        ] = None,
    ) -> None:
        """Trigger a DAG on the running Airflow through its REST API, with params."""
        from aisle.app.jobs import orchestration

        started = time.perf_counter()
        params = orchestration.TriggerParams(
            dag_id=dag_id, conf=parse_conf(conf), wait=wait, timeout_s=timeout, reason=reason
        )
        summary = orchestration.trigger(get_settings(), params, progress=print_task_change)
        err_console.print(
            f"run {summary['run_id']}: {summary['state']}  {summary['url']}", highlight=False, soft_wrap=True
        )
        print_failures(summary)
        emit_summary("dags.trigger", summary, started)
        if summary.get("ok") is False:
            raise typer.Exit(1)
