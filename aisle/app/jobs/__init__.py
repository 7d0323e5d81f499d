"""The application's jobs: one module per stage, one signature.

Every job is ``job(settings, params) -> summary``. ``params`` is a mapping (a DAG run's params, the CLI's
options, a JSON ``--conf``) or the job's own frozen params dataclass; unknown keys are refused with a
clear sentence. The summary is JSON-able, so the CLI prints it as its last stdout line and a DAG task
returns it as XCom. Optional keyword-only hooks (``progress``, ``stop``) only report or interrupt; they
never change what a job computes.

The CLI, ``aisle demo`` and every DAG task call these functions and nothing below them, so each stage
has one entry point whichever way it is started.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from aisle.core.errors import BadInput, JobFailed

P = TypeVar("P")
#: Advances a named stage of a job's progress bar.
Step = Callable[[str], None]


def no_step(_name: str) -> None:
    return None


def parse_params(cls: type[P], params: Mapping[str, Any] | P | None) -> P:
    """``params`` as ``cls``: a mapping's None values mean "the default", unknown keys are refused."""
    if isinstance(params, cls):
        return params
    raw: dict[str, Any] = dict(params or {})  # type: ignore[arg-type]
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(raw) - fields)
    if unknown:
        known = ", ".join(sorted(fields))
        raise BadInput(f"unknown parameter(s) {', '.join(unknown)} for {cls.__name__}; known: {known}")
    try:
        return cls(**{k: v for k, v in raw.items() if v is not None})
    except TypeError as exc:
        raise BadInput(f"bad parameters for {cls.__name__}: {exc}") from None


def finish(job: str, summary: dict[str, Any]) -> dict[str, Any]:
    """The one rule for a job's outcome: a summary that says ``ok: false`` (nothing ingested, a batch
    refused, only part done) fails the job with its ``problem`` sentence; the CLI exits 1 and still
    prints the summary, a DAG task fails. Otherwise the summary is returned as it is."""
    if summary.get("ok") is False:
        raise JobFailed(str(summary.get("problem") or "the job did not do what was asked"), summary, job)
    return summary
