"""Terminal output shared by every command: progress on stderr, one JSON summary line on stdout.

Keeping humans (stderr) and scripts (stdout) on separate streams lets DAGs parse the last stdout line.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

err_console = Console(stderr=True)


def emit_summary(job: str, summary: dict[str, Any], started: float | None = None) -> dict[str, Any]:
    """Print the job's JSON summary as the last stdout line and return it."""
    line: dict[str, Any] = {"job": job, "ok": True, **summary}  # a summary may set ok=False itself
    if started is not None:
        line["seconds"] = round(time.perf_counter() - started, 3)
    sys.stdout.write(json.dumps(line, default=str, sort_keys=False) + "\n")
    sys.stdout.flush()
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


def configure_logging(level: int = logging.INFO) -> None:
    """Our own log lines on stderr via rich; kafka-python's per-retry chatter kept to real errors."""
    from rich.logging import RichHandler

    logging.basicConfig(
        level=level,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False)],
        force=True,
    )
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
