"""Great Expectations plumbing: one context, data source, batch definition and suite, built once.

Validation always runs in an in-memory context (per process); the file context under ``AISLE_HOME/gx``
only receives the suites and the results to show, when a job publishes them (:func:`publish`).
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aisle.core.errors import AisleError

if TYPE_CHECKING:
    import pandas as pd


def _run_name(source: str) -> str | None:
    """GE stores results under keys that must not contain path separators; keep the source readable."""
    return re.sub(r"[/\\]+", ":", source).strip(":") or None


def _result_format() -> dict[str, Any]:
    # COMPLETE is the level that returns the full unexpected_index_list. The unexpected values
    # themselves, their counts and the pandas query string are not needed and cost time, so they are off.
    return {
        "result_format": "COMPLETE",
        "partial_unexpected_count": 0,
        "exclude_unexpected_values": True,
        "return_unexpected_index_query": False,
    }


class GxSuite:
    """One in-memory GE context + pandas data source + whole-DataFrame batch definition + suite, built once
    per process. Nothing about validation touches shared files, so any number of jobs (the stream, two
    batch jobs) validate at once on one ``AISLE_HOME``.

    ``record=True`` keeps each run's result in memory; :func:`publish` writes them to the Data Docs site
    later, under a lock, with a retention limit.
    """

    def __init__(self, name: str, expectations: Iterable[Any], record: bool = False) -> None:
        import great_expectations as gx

        self.name = name
        self.context = gx_context(None)
        source = self.context.data_sources.add_or_update_pandas(f"{name}_frames")
        asset = source.add_dataframe_asset(name)
        self.batch_definition = asset.add_batch_definition_whole_dataframe(f"{name}_batch")
        suite = gx.ExpectationSuite(name=name)
        for expectation in expectations:
            suite.add_expectation(expectation)
        self.suite = self.context.suites.add_or_update(suite)
        self.reasons = {e.id: e.meta["reason"] for e in self.suite.expectations}
        self.record = record
        self.pending: list[tuple[Any, Any, Any]] = []  # (run id, result) not yet published
        self._lock = threading.Lock()  # GE validators are not documented as thread-safe

    def run(
        self, frame: pd.DataFrame, parameters: dict[str, Any], source: str = ""
    ) -> tuple[list[tuple[str, np.ndarray]], Any]:
        """Validate ``frame`` (RangeIndex); return ``[(reason, failing row positions)]`` and GE's result."""
        from great_expectations.core.run_identifier import RunIdentifier
        from great_expectations.validator.v1_validator import Validator

        with self._lock:
            validator = Validator(
                batch_definition=self.batch_definition,
                batch_parameters={"dataframe": frame},
                result_format=_result_format(),
            )
            result = validator.validate_expectation_suite(self.suite, parameters)
            if self.record:
                run_id = RunIdentifier(run_name=_run_name(source), run_time=datetime.now(UTC))
                self.pending.append((run_id, result, validator.active_batch_id))
        failures = []
        for r in result.results:
            config: Any = r.expectation_config
            info = r.exception_info or {}
            if info.get("raised_exception"):
                raise AisleError(
                    f"validation suite {self.name}: {config.type} could not run "
                    f"({info.get('exception_message')})"
                )
            if r.success:
                continue
            index = r.result.get("unexpected_index_list")
            if index is None:  # only column-map expectations are used; anything else is a bug
                raise AisleError(f"validation suite {self.name}: no failing rows for {config.type}")
            reason = self.reasons.get(config.id) or config.meta.get("reason", "")
            failures.append((reason, np.asarray(index, dtype=np.int64)))
        return failures, result


def publish(gx_root: Path, suites: Iterable[GxSuite], keep: int) -> Path:
    """Write the suites and their pending results to the file context at ``gx_root`` and rebuild the Data
    Docs site; keep only the newest ``keep`` results. Serialised across processes by a file lock, and the
    file context is opened fresh under it, so concurrent jobs never see each other's half-saved state."""
    import fcntl

    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    gx_root.mkdir(parents=True, exist_ok=True)
    with open(gx_root / ".lock", "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            context = gx_context(gx_root)
            store = context.validation_results_store
            for suite in suites:
                context.suites.add_or_update(suite.suite)
                for run_id, result, batch_id in suite.pending:
                    key = ValidationResultIdentifier(
                        expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite.name),
                        run_id=run_id,
                        batch_identifier=batch_id,
                    )
                    store.store_validation_results(result, key)
                suite.pending.clear()
            _prune(gx_root / "uncommitted" / "validations", keep)
            sites = context.build_data_docs()
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
    index = gx_root / "uncommitted" / "data_docs" / "local_site" / "index.html"
    if not index.exists():  # a site configured elsewhere: trust what GE reports
        url = next(iter(sites.values()), "")
        index = Path(re.sub(r"^file://", "", url))
    if not index.exists():
        raise AisleError(f"Data Docs were built but no index.html was found under {gx_root}")
    return index


def _prune(results: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` stored results (and the Data Docs pages of the deleted ones)."""
    stored = sorted(results.rglob("*.json"), key=lambda p: p.stat().st_mtime) if results.exists() else []
    for old in stored[: max(len(stored) - keep, 0)]:
        old.unlink(missing_ok=True)
        page = results.parent / "data_docs" / "local_site" / "validations" / old.relative_to(results)
        page.with_suffix(".html").unlink(missing_ok=True)
    for directory in sorted((p for p in results.rglob("*") if p.is_dir()), reverse=True):
        with contextlib.suppress(OSError):
            directory.rmdir()  # only succeeds when empty


def gx_context(gx_root: Path | None) -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    quiet = ProgressBarsConfig(globally=False, metric_calculations=False)
    if gx_root is None:
        config = DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(),
            analytics_enabled=False,
            progress_bars=quiet,
        )
        return gx.get_context(mode="ephemeral", project_config=config)
    context = gx.get_context(mode="file", context_root_dir=gx_root)
    context.variables.analytics_enabled = False
    context.variables.progress_bars = quiet
    context.variables.save()
    return context
