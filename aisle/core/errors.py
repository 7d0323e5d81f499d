"""Errors the CLI turns into one clear sentence and an exit code (no traceback)."""

from __future__ import annotations

from typing import Any


class AisleError(Exception):
    """A failure the user can act on. ``exit_code`` 2 means bad usage or input, 1 a failed job."""

    exit_code = 1

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class BadInput(AisleError):
    """The arguments, files or settings given to a command cannot be used."""

    exit_code = 2


class ServiceUnavailable(AisleError):
    """A service (Redis, the broker, ...) that the command needs does not answer."""

    exit_code = 1


class JobFailed(AisleError):
    """The job ran to its end but did not do what was asked: it ingested nothing, refused a batch, or was
    only partly done. It carries the job's full summary, which the CLI still prints (as its last stdout
    line) before the sentence, so a script sees which files and rows failed and why."""

    exit_code = 1

    def __init__(self, message: str, summary: dict[str, Any], job: str) -> None:
        super().__init__(message)
        self.summary = summary
        self.job = job  # the name its summary line carries, e.g. "ingest.batch"


class ServiceTimeout(ServiceUnavailable):
    """A service answered too slowly for the caller's time budget (it may still be up)."""
