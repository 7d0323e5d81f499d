"""The ``aisle`` command: one subcommand per pipeline stage.

Every job prints progress on stderr and ends with one JSON summary line on stdout.
Exit codes: 0 ok, 1 the job failed, 2 bad usage or input.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from aisle.console import emit_summary, err_console, staged_progress
from aisle.errors import AisleError
from aisle.settings import ensure_home, get_settings

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    name="aisle",
    help="Aisle: real-time personalized product recommendations, run as an MLOps pipeline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
services_app = typer.Typer(help="Start, stop and inspect the embedded Redis and Kafka-protocol broker.")
data_app = typer.Typer(help="Generate a synthetic shop or import your own interaction history.")
app.add_typer(services_app, name="services", no_args_is_help=True)
app.add_typer(data_app, name="data", no_args_is_help=True)


def handles_errors(func: F) -> F:
    """Turn AisleError into one red sentence and its exit code, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except AisleError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


# ----------------------------------------------------------------------------- services


@services_app.command("up")
@handles_errors
def services_up_cmd() -> None:
    """Start embedded Redis and the Tansu broker (unless external URLs are configured)."""
    from aisle.services import services_up

    started = time.perf_counter()
    settings = get_settings()
    ensure_home(settings)
    summary = services_up(settings)
    for name, info in summary.items():
        where = info.get("url") or info.get("bootstrap")
        kind = "started" if info.get("managed") else "external"
        err_console.print(f"{name:6} {where}  ({kind})")
    emit_summary("services.up", {"services": summary}, started)


@services_app.command("down")
@handles_errors
def services_down_cmd() -> None:
    """Stop the services that `aisle services up` started (external ones are left alone)."""
    from aisle.services import services_down

    started = time.perf_counter()
    emit_summary("services.down", {"stopped": services_down(get_settings())}, started)


@services_app.command("status")
@handles_errors
def services_status_cmd() -> None:
    """Show each service, its address and whether it answers now."""
    from aisle.services import services_status

    started = time.perf_counter()
    status = services_status(get_settings())
    for name, info in status.items():
        where = info.get("url") or info.get("bootstrap") or "-"
        state = "[green]up[/]" if info.get("ok") else "[red]down[/]"
        err_console.print(f"{name:6} {where}  {state}")
    line = emit_summary("services.status", {"services": status}, started)
    if not all(info.get("ok") for info in status.values()):
        line["ok"] = False
        raise typer.Exit(1)


# ----------------------------------------------------------------------------- data


@data_app.command("generate")
@handles_errors
def data_generate_cmd(
    users: Annotated[int, typer.Option(help="Number of shoppers.")] = 5_000,
    items: Annotated[int, typer.Option(help="Number of catalog items.")] = 1_000,
    days: Annotated[int, typer.Option(help="Length of the simulated period in days.")] = 60,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same shop.")] = 42,
    start: Annotated[str, typer.Option(help="First day of the period (UTC), YYYY-MM-DD.")] = "2026-01-05",
    fmt: Annotated[str, typer.Option("--format", help="Event file format: parquet, jsonl or csv.")] = "parquet",
    out: Annotated[
        Path | None, typer.Option(help="Output directory (default: $AISLE_HOME/raw/shop).")
    ] = None,
) -> None:
    """Generate a synthetic shop: catalog, users and events in the event schema."""
    from aisle.data.synthetic import ShopConfig, generate_shop, write_shop

    started = time.perf_counter()
    settings = get_settings()
    config = ShopConfig(users=users, items=items, days=days, seed=seed, start=start)
    config.validate()
    ensure_home(settings)
    out_dir = out or settings.paths.raw / "shop"
    stages = ["catalog", "users", "sessions", "views", "funnel", "events", "write"]
    with staged_progress("generate", stages) as step:
        shop = generate_shop(config, progress=step)
        step("write")
        paths = write_shop(shop, out_dir, fmt)
    emit_summary("data.generate", {**shop.summary(), "seed": seed, "paths": paths}, started)


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
) -> None:
    """Run every stage that exists, end to end, on a small generated shop."""
    from aisle.demo import run_demo

    started = time.perf_counter()
    summary = run_demo(get_settings(), users=users, items=items, days=days, keep_services=keep_services)
    emit_summary("demo", summary, started)


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
) -> None:
    """Aisle: real-time personalized product recommendations, run as an MLOps pipeline."""


def main() -> None:
    app()


if __name__ == "__main__":
    main()
