"""The ``aisle`` command: one subcommand per pipeline stage.

Every job prints progress on stderr and ends with one JSON summary line on stdout.
Exit codes: 0 ok, 1 the job failed, 2 bad usage or input.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from aisle.app.cli_base import VERBOSE_HELP, handles_errors, set_verbose
from aisle.core.console import (
    emit_summary,
    err_console,
    print_table,
    staged_progress,
)
from aisle.core.errors import JobFailed
from aisle.core.settings import ensure_home, get_settings

app = typer.Typer(
    name="aisle",
    help="Aisle: real-time personalized product recommendations, run as an MLOps pipeline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
services_app = typer.Typer(help="Start, stop and inspect the embedded Redis and Kafka-protocol broker.")
app.add_typer(services_app, name="services", no_args_is_help=True)
features_app = typer.Typer(help="Spark features → Feast offline store → Redis online store; training sets.")
app.add_typer(features_app, name="features", no_args_is_help=True)


# ----------------------------------------------------------------------------- services


@services_app.command("up")
@handles_errors
def services_up_cmd(
    airflow: Annotated[
        bool, typer.Option(help="Also start Airflow (API server + UI, scheduler...).")
    ] = False,
    stream: Annotated[bool, typer.Option(help="Also run the supervised stream ingester.")] = False,
) -> None:
    """Start embedded Redis and the Tansu broker (unless external URLs are configured)."""
    from aisle.app.cli_airflow import extras_up
    from aisle.app.services import services_up

    started = time.perf_counter()
    settings = get_settings()
    ensure_home(settings)
    summary = services_up(settings)
    for name, info in summary.items():
        where = info.get("url") or info.get("bootstrap")
        kind = "external" if not info.get("managed") else "started" if info.get("started") else "reused"
        state = "" if info.get("ok") else "  [red]does not answer[/]"
        err_console.print(f"{name:6} {where}  ({kind}){state}")
        if info.get("note"):
            err_console.print(f"       {info['note']}")
    down = [
        f"{name} at {info.get('url') or info.get('bootstrap')}"
        for name, info in summary.items()
        if not info.get("ok")
    ]
    if down:
        problem = f"configured service(s) do not answer: {', '.join(down)}; check the URL settings"
        raise JobFailed(problem, {"services": summary, "problem": problem}, "services.up")
    emit_summary("services.up", {"services": summary, **extras_up(settings, airflow, stream)}, started)


@services_app.command("down")
@handles_errors
def services_down_cmd() -> None:
    """Stop what `aisle services up` (or `aisle demo`) started: the recommendation service, the stream
    ingester and Airflow first; external services stay."""
    from aisle.app.cli_airflow import extras_down
    from aisle.app.server import stop_detached
    from aisle.app.services import services_down

    started = time.perf_counter()
    settings = get_settings()
    serving = stop_detached(settings)  # the recommendation service `aisle demo` left running
    first = extras_down(settings)  # the stream ingester commits, Airflow stops, before their services go
    stopped = services_down(settings)
    for info in stopped.values():
        if info.get("warning"):
            err_console.print(f"[yellow]warning:[/] {info['warning']}", highlight=False, soft_wrap=True)
    summary = {**first, **stopped, **({"serving": serving} if serving is not None else {})}
    emit_summary("services.down", {"stopped": summary}, started)


@services_app.command("status")
@handles_errors
def services_status_cmd() -> None:
    """Show each service, its address and whether it answers now."""
    from aisle.app.services import services_status

    started = time.perf_counter()
    settings = get_settings()
    status = services_status(settings)
    from aisle.app.cli_airflow import extras_status

    extras = extras_status(settings)
    rows = [
        [
            name,
            info.get("url") or info.get("bootstrap"),
            ("embedded" if info.get("managed") else "external") if info.get("pid") or info.get("ok") else "",
            "up" if info.get("ok") else "down",
            info.get("note") or info.get("log"),
        ]
        for name, info in status.items()
    ]
    if "airflow" in extras:
        airflow = extras["airflow"]
        state = "up" if airflow.get("ok") else "down"
        rows.append(["airflow", airflow.get("url"), "embedded", state, "login: `aisle airflow status`"])
    if "stream" in extras:
        stream = extras["stream"]
        state = "up" if stream.get("ok") else "down"
        where = f"ingester pid {stream.get('ingester_pid')}"
        rows.append(["stream", where, "embedded", state, f"restarts {stream.get('restarts')}"])
    print_table(["service", "address", "kind", "state", "note / log"], rows)
    healthy = all(info.get("ok") for info in status.values())
    healthy = healthy and all(info.get("ok", True) for info in extras.values())
    emit_summary("services.status", {"services": {**status, **extras}, "ok": healthy}, started)
    if not healthy:
        raise typer.Exit(1)


# ----------------------------------------------------------------------------- features


@features_app.command("build")
@handles_errors
def features_build_cmd(
    since: Annotated[
        str | None, typer.Option(help="Recompute snapshots from this date (YYYY-MM-DD); default: all.")
    ] = None,
) -> None:
    """Compute feature tables with Spark, `feast apply`, and materialize incrementally into Redis."""
    from aisle.app.jobs import features

    params = features.ComputeParams(since=since)
    with staged_progress("features", features.stages()) as step:
        summary = features.build(get_settings(), params, progress=step)
    emit_summary("features.build", summary)


@features_app.command("training-set")
@handles_errors
def features_training_set_cmd(
    out: Annotated[
        Path | None, typer.Option(help="Output Parquet (default under $AISLE_HOME/features).")
    ] = None,
    service: Annotated[str, typer.Option(help="Feast feature service to join.")] = "ranking",
    days: Annotated[int | None, typer.Option(help="Only labels from the newest N days.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many labelled events (sampled).")] = 200_000,
    negatives: Annotated[int, typer.Option(help="Random non-interacted items per label (label 0).")] = 0,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
) -> None:
    """Point-in-time join of graded labels from the lake with Feast features (no future leaks)."""
    from aisle.app.jobs import features

    params = features.TrainingSetParams(
        out=str(out) if out else None, service=service, days=days, limit=limit, negatives=negatives, seed=seed
    )
    emit_summary("features.training-set", features.training_set(get_settings(), params))


# ----------------------------------------------------------------------------- serving


@app.command("serve")
@handles_errors
def serve_cmd(
    port: Annotated[int, typer.Option(help="Port to listen on (127.0.0.1).")] = 3000,
    workers: Annotated[int, typer.Option(help="Worker processes; each holds its own copy of the model.")] = 1,
    threads: Annotated[int, typer.Option(help="Request threads per worker.")] = 1,
    host: Annotated[str, typer.Option(help="Address to bind; 0.0.0.0 inside a container.")] = "127.0.0.1",
) -> None:
    """Run the recommendation service (BentoML) until Ctrl-C: /recommend, /similar, /feedback, /docs."""
    from aisle.app.jobs import serve

    started = time.perf_counter()
    err_console.print(
        f"serving on http://{host}:{port}  (OpenAPI page: http://{host}:{port}/ ; Ctrl-C stops)"
    )
    params = {"port": port, "workers": workers, "threads": threads, "host": host}
    summary = serve.serve(get_settings(), params)
    emit_summary("serve", summary, started)


# ----------------------------------------------------------------------------- demo and info


@app.command("demo")
@handles_errors
def demo_cmd(
    users: Annotated[int, typer.Option(help="Shoppers in the demo shop.")] = 3_000,
    items: Annotated[int, typer.Option(help="Items in the demo shop.")] = 600,
    days: Annotated[int, typer.Option(help="Days of history in the demo shop.")] = 45,
    keep_services: Annotated[
        bool, typer.Option(help="Leave the embedded services running afterwards.")
    ] = True,
    airflow: Annotated[
        bool,
        typer.Option(help="Run the stages as DAGs on a live Airflow (--no-airflow: in this process)."),
    ] = True,
) -> None:
    """Run every stage that exists, end to end, on a small generated shop."""
    from aisle.app.demo import run_demo, stop_after_failure
    from aisle.app.demo_airflow import run_demo_airflow

    started = time.perf_counter()
    run = run_demo_airflow if airflow else run_demo
    settings = get_settings()
    try:
        summary = run(settings, users=users, items=items, days=days, keep_services=keep_services)
    except BaseException:
        if not keep_services:  # the flag promises nothing left running, failed stage or not
            stop_after_failure(settings, airflow=airflow)
        raise
    emit_summary("demo", summary, started)


dags_app = typer.Typer(help="List Aisle's Airflow DAGs or run one locally through dag.test().")
app.add_typer(dags_app, name="dags", no_args_is_help=True)


@dags_app.command("list")
@handles_errors
def dags_list_cmd() -> None:
    """List the DAGs in dags/ with their parameters."""
    from aisle.app.dag_runner import load_dags, prepare_airflow

    prepare_airflow(get_settings())
    loaded = sorted(load_dags().items())
    dags = {dag_id: sorted(dag.params.keys()) for dag_id, dag in loaded}
    rows = [[dag_id, _schedule(dag), ", ".join(dags[dag_id])] for dag_id, dag in loaded]
    print_table(["DAG", "runs on", "params"], rows, empty="no DAGs found in dags/")
    emit_summary("dags.list", {"dags": dags})


def _schedule(dag: Any) -> str:
    """A DAG's trigger in words: the assets it waits for, a timetable's summary, or "on demand"."""
    timetable = getattr(dag, "timetable", None)
    condition = getattr(timetable, "asset_condition", None)
    if condition is not None:
        names = [str(getattr(a, "name", a)) for a in getattr(condition, "objects", [])]
        return "asset " + " & ".join(names) if names else "assets"
    summary = getattr(timetable, "summary", None)
    return str(summary) if summary and summary != "None" else "on demand"


@dags_app.command("test")
@handles_errors
def dags_test_cmd(
    dag_id: Annotated[str, typer.Argument(help="DAG id (= file name in dags/).")],
    conf: Annotated[str, typer.Option(help="Params as JSON, e.g. '{\"users\": 100}'.")] = "{}",
) -> None:
    """Run one DAG end to end in this process (Airflow's dag.test), with params."""
    from aisle.app.cli_airflow import parse_conf
    from aisle.app.dag_runner import run_dag

    started = time.perf_counter()
    emit_summary("dags.test", run_dag(get_settings(), dag_id, parse_conf(conf)), started)


@app.command("settings")
@handles_errors
def settings_cmd() -> None:
    """Print the effective settings (from AISLE_* variables, .env and defaults)."""
    settings = get_settings()
    values = settings.model_dump(mode="json")
    values["effective_mlflow_uri"] = settings.effective_mlflow_uri
    values["home_resolved"] = str(settings.paths.home)
    emit_summary("settings", {"settings": values})


def _print_version(value: bool) -> None:
    if value:
        from aisle import __version__

        typer.echo(__version__)
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit.", callback=_print_version, is_eager=True),
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help=VERBOSE_HELP)] = False,
) -> None:
    """Aisle: real-time personalized product recommendations, run as an MLOps pipeline."""
    set_verbose(verbose)


from aisle.app import cli_airflow, cli_ingest, cli_models, cli_ui  # noqa: E402 - need handles_errors and app

cli_ingest.register(app, handles_errors)
cli_models.register(app, handles_errors)
cli_airflow.register(app, dags_app, handles_errors)
cli_ui.register(app, handles_errors)

from aisle.app import cli_monitor  # noqa: E402 - needs handles_errors and app from above

cli_monitor.register(app, handles_errors)

from aisle.app import cli_experiments  # noqa: E402 - needs handles_errors and app from above

cli_experiments.register(app, handles_errors)

from aisle.app import cli_search  # noqa: E402 - needs handles_errors and app from above

cli_search.register(app, handles_errors)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
