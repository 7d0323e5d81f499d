"""Terminal output shared by every command: progress on stderr, one JSON summary line on stdout.

Keeping humans (stderr) and scripts (stdout) on separate streams lets DAGs parse the last stdout line.
While a command runs, :mod:`aisle.core.logs` may point file descriptors 1 and 2 at a log file so that
third-party output lands there; Aisle's own console and summary then write to the saved terminal
streams set with :func:`use_terminal`.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

# soft_wrap: a long path or URL stays on one line (copyable) instead of being cut at 80 columns
err_console = Console(stderr=True, soft_wrap=True)
_summary_out: TextIO | None = None
_summary_extra: dict[str, Any] = {}


def use_terminal(stdout: TextIO | None, stderr: TextIO | None, summary_extra: dict[str, Any]) -> None:
    """Send the console and the JSON summary to these streams (None: back to sys.stdout/sys.stderr).

    ``summary_extra`` is merged into every summary (the log file's path), so scripts find it too.
    """
    global _summary_out, _summary_extra
    _summary_out = stdout
    _summary_extra = dict(summary_extra)
    if stderr is None:
        err_console.file = None  # type: ignore[assignment]  # rich: None means sys.stderr again
    else:
        err_console.size = err_console.size  # keep the terminal's width while fd 2 is a file
        err_console.file = stderr


def emit_summary(job: str, summary: dict[str, Any], started: float | None = None) -> dict[str, Any]:
    """Print the job's JSON summary as the last stdout line and return it."""
    line: dict[str, Any] = {"job": job, "ok": True, **summary}  # a summary may set ok=False itself
    if started is not None:
        line["seconds"] = round(time.perf_counter() - started, 3)
    for key, value in _summary_extra.items():
        line.setdefault(key, value)
    out = _summary_out or sys.stdout
    out.write(json.dumps(line, default=str, sort_keys=False) + "\n")
    out.flush()
    return line


def new_progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
        # Python-level writes during a bar belong to the log file, not above the bar on the terminal
        redirect_stdout=False,
        redirect_stderr=False,
    )


@contextmanager
def staged_progress(title: str, stages: list[str]) -> Iterator[Any]:
    """A bar over named stages; yields a callback ``step(stage_name)`` that advances it."""
    with new_progress() as progress:
        task = progress.add_task(title, total=len(stages))
        seen: list[str] = []

        def step(name: str) -> None:
            if seen:
                progress.advance(task)
            seen.append(name)
            progress.update(task, description=f"{title}: {name}")

        yield step
        progress.update(task, completed=len(stages), description=f"{title}: done")


@contextmanager
def counting_progress(title: str, total: int | None) -> Iterator[Any]:
    """A bar (or a counter when the total is unknown) advanced by ``advance(n)``."""
    with new_progress() as progress:
        task = progress.add_task(title, total=total)

        def advance(n: int) -> None:
            progress.advance(task, n)

        yield advance


def print_table(columns: list[str], rows: list[list[Any]], *, empty: str = "nothing to list") -> None:
    """A table for people on stderr (before the JSON summary on stdout): no borders, one header line."""
    from rich.table import Table

    if not rows:
        err_console.print(empty, highlight=False)
        return
    table = Table(box=None, pad_edge=False, header_style="bold", show_edge=False)
    for name in columns:
        table.add_column(name, overflow="fold")  # wrap in a narrow terminal, never cut with "…"
    for row in rows:
        table.add_row(*("-" if value is None or value == "" else str(value) for value in row))
    if err_console.is_terminal:
        err_console.print(table)
    else:  # a pipe or a file has no width to respect: one line per row there
        Console(file=err_console.file, width=240, color_system=None).print(table)
