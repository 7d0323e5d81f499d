"""Data and ingestion commands: ``aisle data generate|stream|import``, ``aisle ingest batch|stream|status``.

Kept apart from ``aisle.app.cli`` so the base command stays small; ``register`` attaches them to the app.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from aisle.core.console import (
    counting_progress,
    emit_summary,
    err_console,
    staged_progress,
)
from aisle.core.errors import JobFailed
from aisle.core.settings import get_settings


def register(app: typer.Typer, handles_errors: Callable[[Any], Any]) -> None:
    """Attach the data and ingest commands to the ``aisle`` app."""
    data_app = typer.Typer(help="Generate a synthetic shop or import your own interaction history.")
    ingest_app = typer.Typer(
        help="Validate events into the lake: from files (batch) or from Kafka (stream); the group's status."
    )
    app.add_typer(data_app, name="data", no_args_is_help=True)
    app.add_typer(ingest_app, name="ingest", no_args_is_help=True)

    @data_app.command("generate")
    @handles_errors
    def data_generate_cmd(
        users: Annotated[int, typer.Option(help="Number of shoppers.")] = 5_000,
        items: Annotated[int, typer.Option(help="Number of catalog items.")] = 1_000,
        days: Annotated[int, typer.Option(help="Length of the simulated period in days.")] = 60,
        seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same shop.")] = 42,
        start: Annotated[str, typer.Option(help="First day of the period (UTC), YYYY-MM-DD.")] = "2026-01-05",
        fmt: Annotated[
            str, typer.Option("--format", help="Event file format: parquet, jsonl or csv.")
        ] = "parquet",
        out: Annotated[
            Path | None, typer.Option(help="Output directory (default: $AISLE_HOME/raw/shop).")
        ] = None,
        shift: Annotated[
            str | None,
            typer.Option(help="Drift on purpose from --shift-at on: taste, prices or new-items."),
        ] = None,
        shift_at: Annotated[
            int | None, typer.Option(help="Day of the period (0 = first) from which --shift applies.")
        ] = None,
    ) -> None:
        """Generate a synthetic shop: catalog, users and events in the event schema."""
        from aisle.app.jobs import shop

        params = shop.GenerateParams(
            users=users,
            items=items,
            days=days,
            seed=seed,
            start=start,
            format=fmt,
            out=str(out) if out else None,
            shift=shift,
            shift_at=shift_at,
        )
        params.shop_config()  # bad sizes or dates fail before the progress bar appears
        with staged_progress("generate", params.stages()) as step:
            summary = shop.generate(get_settings(), params, progress=step)
        emit_summary("data.generate", summary)

    @data_app.command("stream")
    @handles_errors
    def data_stream_cmd(
        rate: Annotated[
            float | None, typer.Option(help="Events per second; omit to send as fast as possible.")
        ] = None,
        limit: Annotated[int | None, typer.Option(help="Send at most this many events.")] = None,
        offset: Annotated[int, typer.Option(help="Skip this many events (in time order) first.")] = 0,
        path: Annotated[
            Path | None, typer.Option(help="Event file to replay (default: the generated shop's events).")
        ] = None,
    ) -> None:
        """Replay generated (or any) events into the Kafka `events` topic, in time order."""
        from aisle.app.jobs import ingest

        params = ingest.ProduceParams(path=str(path) if path else None, rate=rate, limit=limit, offset=offset)
        with counting_progress("stream", total=None) as advance:
            summary = ingest.produce(get_settings(), params, progress=advance)
        emit_summary("data.stream", summary)

    @data_app.command("import")
    @handles_errors
    def data_import_cmd(
        interactions: Annotated[
            Path, typer.Option(help="CSV/Parquet with user_id,item_id,timestamp[,rating|event_type].")
        ],
        catalog: Annotated[
            Path | None, typer.Option(help="Optional catalog CSV/Parquet with at least item_id.")
        ] = None,
        event_type: Annotated[
            str, typer.Option(help="Event type for rows that have neither event_type nor rating.")
        ] = "view",
        dry_run: Annotated[
            bool,
            typer.Option(
                "--dry-run", help="Show the column mapping and what would be refused; write nothing."
            ),
        ] = False,
    ) -> None:
        """Import your own interaction history through the same validation gate (idempotent).

        An import is history: the shop-opening check (AISLE_SHOP_OPENED_AT) does not apply to it.
        """
        from aisle.app.jobs import ingest

        params = ingest.ImportParams(
            interactions=str(interactions),
            catalog=str(catalog) if catalog else None,
            event_type=event_type,
            dry_run=dry_run,
        )
        try:
            summary = ingest.import_history(get_settings(), params)
        except JobFailed as exc:
            if dry_run:
                show_import_plan(exc.summary)
            raise
        if dry_run:
            show_import_plan(summary)
        emit_summary("data.import", summary)

    @ingest_app.command("batch")
    @handles_errors
    def ingest_batch_cmd(
        paths: Annotated[list[Path], typer.Argument(help="Files or directories (CSV, JSON Lines, Parquet).")],
        kind: Annotated[
            str | None,
            typer.Option(
                help="events, catalog or users for every file; default: told by each file's columns."
            ),
        ] = None,
    ) -> None:
        """Validate event, catalog and user files into the lake; bad rows go to quarantine with why."""
        from aisle.app.jobs import ingest

        params = ingest.BatchParams(sources=tuple(str(p) for p in paths), kind=kind)
        with counting_progress("ingest", total=None) as advance:
            summary = ingest.batch(get_settings(), params, progress=lambda _f, n: advance(n))
        emit_summary("ingest.batch", summary)

    @ingest_app.command("stream")
    @handles_errors
    def ingest_stream_cmd(
        max_seconds: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
        max_events: Annotated[int | None, typer.Option(help="Stop after reading this many events.")] = None,
        idle_seconds: Annotated[
            float | None, typer.Option(help="Stop when no event arrived for this many seconds.")
        ] = None,
        push_features: Annotated[
            bool, typer.Option(help="Push each user's recent items and session counters to the online store.")
        ] = True,
        latency_budget_ms: Annotated[
            float | None,
            typer.Option(help="Close a micro-batch once its first event has waited this many milliseconds."),
        ] = None,
    ) -> None:
        """Consume the Kafka `events` topic into the lake (unbounded unless a bound is given)."""
        from aisle.app.jobs import ingest

        params = ingest.StreamParams(
            max_seconds=max_seconds,
            max_events=max_events,
            idle_seconds=idle_seconds,
            push_features=push_features,
            latency_budget_ms=latency_budget_ms,
        )
        stop = ingest.stop_on_signals()
        with counting_progress("consume", total=max_events) as advance:
            seen = [0]

            def on_progress(counts: Any) -> None:
                advance(counts.read - seen[0])
                seen[0] = counts.read

            summary = ingest.stream(get_settings(), params, stop=stop, progress=on_progress)
        emit_summary("ingest.stream", summary)

    @ingest_app.command("status")
    @handles_errors
    def ingest_status_cmd(
        group: Annotated[
            str | None, typer.Option(help="Consumer group (default: AISLE_CONSUMER_GROUP).")
        ] = None,
    ) -> None:
        """The stream's consumer group: members, produced and committed positions, lag, dead letters."""
        from aisle.app.jobs import ingest

        summary = ingest.status(get_settings(), {"group": group})
        show_stream_status(summary)
        emit_summary("ingest.status", summary)


def show_import_plan(summary: dict[str, Any]) -> None:
    """The dry run for a human (stderr): the mapping, how timestamps were read, what would happen."""
    err_console.print(f"[bold]{summary['source']}[/] → events (dry run: nothing written)")
    for target, origin in summary["mapping"]["fields"].items():
        err_console.print(f"  {target:11} ← {origin}")
    ignored = summary["mapping"]["ignored_columns"]
    if ignored:
        err_console.print(f"  ignored columns: {', '.join(ignored)}")
    readings = ", ".join(f"{kind} {n:,}" for kind, n in summary["timestamps"].items())
    err_console.print(f"  timestamps read as: {readings or '-'}")
    err_console.print(
        f"would accept {summary['would_accept']:,}, already in the lake {summary['already_in_lake']:,}, "
        f"would quarantine {summary['would_quarantine']:,} of {summary['read']:,}"
        + (" (the batch would be refused whole)" if summary["refused"] else "")
    )
    for reason, n in summary["top_reasons"].items():
        err_console.print(f"  {n:>8,} × {reason}")


def show_stream_status(summary: dict[str, Any]) -> None:
    err_console.print(f"topic {summary['topic']}  group {summary['group']}  broker {summary['bootstrap']}")
    members = summary["members"]
    err_console.print(f"members ({summary['members_from']}): {len(members)}")
    for m in members:
        err_console.print(f"  {m}")
    err_console.print("partition  produced  committed  lag")
    for row in summary["partitions"]:
        produced = "?" if row["produced"] is None else f"{row['produced']:,}"
        lag = "?" if row["lag"] is None else f"{row['lag']:,}"
        err_console.print(f"{row['partition']:>9}  {produced:>8}  {row['committed']:>9,}  {lag}")
    lag = "?" if summary["lag"] is None else f"{summary['lag']:,}"
    err_console.print(f"lag {lag}  dead letters {summary['dead_letters']:,}")
