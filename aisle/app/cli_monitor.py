"""``aisle monitor report | ui | collect``: drift and quality reports, the Evidently UI, exposures.

Kept apart from ``aisle.app.cli`` like the model commands; ``register`` attaches them to the app.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Annotated, Any

import typer

from aisle.core.console import counting_progress, emit_summary, err_console, staged_progress
from aisle.core.errors import BadInput
from aisle.core.settings import get_settings


def _print_report(summary: dict[str, Any]) -> None:
    """A few lines for people; the JSON summary follows on stdout."""
    err_console.print(f"as of {summary['as_of']}  (current {summary['windows']['current']})")
    for name, share in summary["drift_shares"].items():
        if share is None:
            why = summary["skipped"].get(name, "not judged")
            err_console.print(f"  drift {name:14} [dim]skipped: {why}[/]")
            continue
        flag = "[bold red]DRIFT[/]" if name in summary["drift_detected"] else "[green]ok[/]"
        cols = ", ".join(summary["drifted_columns"].get(name, [])) or "-"
        err_console.print(f"  drift {name:14} share {share:.2f} {flag}  drifted: {cols}")
    for problem in summary["data_quality_failures"]:
        err_console.print(f"  [bold red]data quality[/] {problem}")
    overall = summary["quality_metrics"].get("all")
    if overall:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in overall.items() if k != "exposures")
        err_console.print(f"  quality ({int(overall['exposures'])} exposures) {shown}")
    elif "quality" in summary["skipped"]:
        err_console.print(f"  quality [dim]skipped: {summary['skipped']['quality']}[/]")
    for decision in summary["triggers"]["decisions"]:
        err_console.print(
            f"  trigger {decision['cause']}: [bold]{decision['action']}[/] — {decision['reason']}"
        )
    retrain = summary["triggers"].get("retrain", {})
    if retrain.get("started"):
        err_console.print(
            f"  retraining: {retrain.get('dag_id')} {retrain.get('state')} (log {retrain.get('log')})"
        )


def register(app: typer.Typer, handles_errors: Callable[[Any], Any]) -> None:
    """Attach ``aisle monitor`` to the ``aisle`` app."""
    monitor_app = typer.Typer(
        help="Drift and quality reports (Evidently), retraining triggers, the Evidently UI."
    )
    app.add_typer(monitor_app, name="monitor", no_args_is_help=True)

    @monitor_app.command("report")
    @handles_errors
    def report_cmd(
        window: Annotated[str, typer.Option(help="Current window, e.g. 1d, 12h, 1w.")] = "1d",
        reference: Annotated[str, typer.Option(help="Reference window just before it, e.g. 7d.")] = "7d",
        at: Annotated[
            str | None,
            typer.Option(help="End of the current window (ISO); default: end of the lake's newest day."),
        ] = None,
        backfill: Annotated[
            int, typer.Option(help="Also report the N-1 windows before it (the dashboards' history).")
        ] = 1,
        retrain: Annotated[
            bool, typer.Option(help="Start train_models when a trigger fires (else only record it).")
        ] = True,
        train_conf: Annotated[
            str, typer.Option(help="train_models params for a triggered run, as JSON.")
        ] = "{}",
    ) -> None:
        """Snapshots of drift, quality, data quality and guardrails; triggers; one JSON summary line."""
        from aisle.app.jobs import monitoring as jobs

        try:
            conf = json.loads(train_conf)
        except json.JSONDecodeError as exc:
            raise BadInput(f"--train-conf is not valid JSON ({exc.msg})") from None
        params = jobs.ReportParams(
            window=window, reference=reference, at=at, backfill=backfill, retrain=retrain, train_conf=conf
        )
        started = time.perf_counter()
        with staged_progress("monitor", jobs.stages(params)) as step:
            summary = jobs.report(get_settings(), params, progress=step)
        _print_report(summary)
        line = emit_summary("monitor.report", summary, started)
        if not line.get("ok", True):
            raise typer.Exit(1)

    @monitor_app.command("ui")
    @handles_errors
    def ui_cmd(
        port: Annotated[int | None, typer.Option(help="Port (default: a free one).")] = None,
        stop: Annotated[bool, typer.Option("--stop", help="Stop the UI this home started.")] = False,
    ) -> None:
        """Serve the Evidently UI over the monitoring workspace (started once, found afterwards)."""
        from aisle.app.jobs import monitoring as jobs

        summary = jobs.ui(get_settings(), {"port": port, "stop": stop})
        if not stop:
            err_console.print(f"Evidently UI: {summary['url']}  (projects: {', '.join(summary['projects'])})")
            err_console.print("stop it with `aisle monitor ui --stop`")
        emit_summary("monitor.ui", summary)

    @monitor_app.command("collect")
    @handles_errors
    def collect_cmd(
        max_seconds: Annotated[float, typer.Option(help="Stop after this many seconds.")] = 60.0,
        idle_seconds: Annotated[float, typer.Option(help="Stop when nothing arrived for this long.")] = 5.0,
    ) -> None:
        """Consume the Kafka `exposures` topic into the lake (what the service showed)."""
        from aisle.app.jobs import monitoring as jobs

        with counting_progress("exposures", total=None) as advance:
            summary = jobs.collect(
                get_settings(), {"max_seconds": max_seconds, "idle_seconds": idle_seconds}, progress=advance
            )
        emit_summary("monitor.collect", summary)
