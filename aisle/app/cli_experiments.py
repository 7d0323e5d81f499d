"""Experiment commands: ``aisle experiment create|start|stop|list|show|assign|attribute|analyze`` and
``aisle simulate traffic``. Kept apart from ``aisle.app.cli``; ``register`` attaches them to the app.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from aisle.app.experiment_output import show_analysis
from aisle.core.console import emit_summary, err_console
from aisle.core.settings import get_settings


def _show_experiment(exp: dict[str, Any]) -> None:
    d = exp["definition"]
    err_console.print(
        f"[bold]{exp['key']}[/] v{exp['version']}  {exp['status']}  layer {exp['layer']}  "
        f"coverage {d['coverage']:.0%}  duration {d['duration']}  salt {exp['salt']}"
    )
    for i, v in enumerate(d["variants"]):
        serves = f"alias {v['alias']}" if v.get("alias") else f"strategy {v['strategy']}"
        role = "  (control)" if i == 0 else ""
        err_console.print(f"  {v['name']:16} {v['weight']:>6.1%}  {serves}{role}")


def _shown(job: str, run: Callable[[], dict[str, Any]]) -> None:
    """Run a job that returns one experiment, show it to people, print the summary for scripts."""
    started = time.perf_counter()
    summary = run()
    _show_experiment(summary["experiment"])
    emit_summary(job, summary, started)


def register(app: typer.Typer, handles_errors: Callable[[Any], Any]) -> None:
    """Attach `aisle experiment …` and `aisle simulate …`."""
    exp_app = typer.Typer(help="A/B experiments: define, start, stop, inspect, assign and analyse.")
    app.add_typer(exp_app, name="experiment", no_args_is_help=True)

    @exp_app.command("create")
    @handles_errors
    def create_cmd(file: Annotated[Path, typer.Argument(help="Experiment definition (YAML).")]) -> None:
        """Store a definition as a draft; a stopped key gets its next version."""
        from aisle.app.jobs import experiments as jobs

        _shown("experiment.create", lambda: jobs.create(get_settings(), {"file": str(file)}))

    @exp_app.command("start")
    @handles_errors
    def start_cmd(key: Annotated[str, typer.Argument(help="Experiment key.")]) -> None:
        """Start the draft: claim its traffic in its layer (refused if it would collide)."""
        from aisle.app.jobs import experiments as jobs

        _shown("experiment.start", lambda: jobs.start(get_settings(), {"key": key}))

    @exp_app.command("stop")
    @handles_errors
    def stop_cmd(key: Annotated[str, typer.Argument(help="Experiment key.")]) -> None:
        """Stop the running version; its shoppers get the default policy again."""
        from aisle.app.jobs import experiments as jobs

        _shown("experiment.stop", lambda: jobs.stop(get_settings(), {"key": key}))

    @exp_app.command("list")
    @handles_errors
    def list_cmd() -> None:
        """Every experiment's latest version and status."""
        from aisle.app.jobs import experiments as jobs

        started = time.perf_counter()
        summary = jobs.list_experiments(get_settings())
        for e in summary["experiments"]:
            variants = ", ".join(f"{n}={s}" for n, s in e["variants"].items())
            err_console.print(f"{e['key']:24} v{e['version']:<3} {e['status']:8} {e['layer']:12} {variants}")
        if not summary["experiments"]:
            err_console.print("no experiments yet: `aisle experiment create FILE.yaml`")
        emit_summary("experiment.list", summary, started)

    @exp_app.command("show")
    @handles_errors
    def show_cmd(
        key: Annotated[str, typer.Argument(help="Experiment key.")],
        version: Annotated[int | None, typer.Option(help="A version (default: the latest).")] = None,
    ) -> None:
        """One experiment's definition, status and versions."""
        from aisle.app.jobs import experiments as jobs

        _shown("experiment.show", lambda: jobs.show(get_settings(), {"key": key, "version": version}))

    @exp_app.command("assign")
    @handles_errors
    def assign_cmd(
        key: Annotated[str, typer.Argument(help="Experiment key.")],
        user: Annotated[str, typer.Argument(help="User id.")],
        device: Annotated[str | None, typer.Option(help="The request's device, for targeting.")] = None,
        country: Annotated[str | None, typer.Option(help="The request's country, for targeting.")] = None,
        returning: Annotated[
            bool | None, typer.Option("--returning/--new", help="Whether the shop knows the shopper.")
        ] = None,
    ) -> None:
        """Which variant a shopper gets, and why (the service computes the same)."""
        from aisle.app.jobs import experiments as jobs

        started = time.perf_counter()
        summary = jobs.assign(
            get_settings(),
            {"key": key, "user": user, "device": device, "country": country, "returning": returning},
        )
        err_console.print(f"{user} → {summary.get('variant') or '-'}  ({summary['reason']})")
        emit_summary("experiment.assign", summary, started)

    @exp_app.command("analyze")
    @handles_errors
    def analyze_cmd(
        key: Annotated[str, typer.Argument(help="Experiment key.")],
        html: Annotated[Path | None, typer.Option(help="Write the HTML report here.")] = None,
        version: Annotated[int | None, typer.Option(help="A version (default: the latest).")] = None,
        drain: Annotated[
            bool, typer.Option(help="First move exposures and events still on Kafka into the lake.")
        ] = True,
        look: Annotated[
            bool, typer.Option(help="Count this read as a look of the sequential interval.")
        ] = True,
    ) -> None:
        """Attribute outcomes to exposures and analyse: lift, intervals, SRM, guardrails, CUPED."""
        from aisle.app.jobs import experiments as jobs

        started = time.perf_counter()
        params = {
            "key": key,
            "version": version,
            "html": str(html) if html else None,
            "drain": drain,
            "record_look": look,
        }
        with err_console.status("attributing and analysing"):
            summary = jobs.analyze(get_settings(), params)
        show_analysis(summary)
        line = {k: v for k, v in summary.items() if k != "timeline"}  # the plot's points: in the JSON file
        emit_summary("experiment.analyze", line, started)
        if summary.get("ok") is False:
            err_console.print(f"[bold red]error:[/] {summary['problem']}")
            raise typer.Exit(1)

    sim_app = typer.Typer(help="Simulated shoppers of the generated shop, against the running service.")
    app.add_typer(sim_app, name="simulate", no_args_is_help=True)

    @sim_app.command("traffic")
    @handles_errors
    def traffic_cmd(
        users: Annotated[int, typer.Option(help="Distinct shoppers drawn from the shop.")] = 1000,
        minutes: Annotated[float, typer.Option(help="Stop after this many minutes at the latest.")] = 5.0,
        rate: Annotated[
            float | None, typer.Option(help="Requests per second (omit: as fast as the clients go).")
        ] = None,
        seed: Annotated[int, typer.Option(help="Seed: shoppers, order and reactions.")] = 0,
        requests: Annotated[
            int | None, typer.Option(help="Requests to send (default: 3 per shopper).")
        ] = None,
        concurrency: Annotated[int, typer.Option(help="Clients sending at once.")] = 8,
        url: Annotated[str | None, typer.Option(help="Service URL (default: the configured one).")] = None,
        shop: Annotated[Path | None, typer.Option(help="Generated shop (default: var/raw/shop).")] = None,
    ) -> None:
        """Shoppers ask for recommendations and click, cart and buy by their latent taste."""
        from aisle.app.jobs import experiments as jobs
        from aisle.core.console import counting_progress

        params = {
            "users": users,
            "minutes": minutes,
            "rate": rate,
            "seed": seed,
            "requests": requests,
            "concurrency": concurrency,
            "url": url,
            "shop": str(shop) if shop else None,
        }
        started = time.perf_counter()
        total = requests if requests is not None else 3 * users
        with counting_progress("traffic", total=total) as advance:
            summary = jobs.simulate_traffic(get_settings(), params, progress=advance)
        err_console.print(
            f"{summary['answered']:,} answered, {summary['failed']:,} failed, variants {summary['variants']},"
            f" events {summary['events_sent']}, {summary['requests_per_s']} requests/s"
        )
        emit_summary("simulate.traffic", summary, started)
        if not summary["ok"]:
            err_console.print(f"[bold red]error:[/] {summary['problem']}")
            raise typer.Exit(1)
