"""Great Expectations plumbing: one context, data source, batch definition and suite, built once.

``gx_root`` None: an ephemeral context (nothing written, nothing kept between batches).
``gx_root`` set: a file context there, whose results store keeps every validation for Data Docs.
"""

from __future__ import annotations

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
    """One GE context + pandas data source + whole-DataFrame batch definition + suite, built once.

    ``gx_root`` None: an ephemeral context (nothing written, nothing kept between batches).
    ``gx_root`` set: a file context there, whose results store keeps every validation for Data Docs.
    """

    def __init__(self, name: str, expectations: Iterable[Any], gx_root: Path | None) -> None:
        import great_expectations as gx

        self.name = name
        self.context = gx_context(gx_root)
        source = self.context.data_sources.add_or_update_pandas(f"{name}_frames")
        asset = source.add_dataframe_asset(name)
        self.batch_definition = asset.add_batch_definition_whole_dataframe(f"{name}_batch")
        suite = gx.ExpectationSuite(name=name)
        for expectation in expectations:
            suite.add_expectation(expectation)
        self.suite = self.context.suites.add_or_update(suite)
        self.reasons = {e.id: e.meta["reason"] for e in self.suite.expectations}
        self.validation_definition = None
        if gx_root is not None:
            self.validation_definition = self.context.validation_definitions.add_or_update(
                gx.ValidationDefinition(name=f"{name}_gate", data=self.batch_definition, suite=self.suite)
            )
        self._lock = threading.Lock()  # GE validators are not documented as thread-safe

    def run(
        self, frame: pd.DataFrame, parameters: dict[str, Any], source: str = ""
    ) -> tuple[list[tuple[str, np.ndarray]], Any]:
        """Validate ``frame`` (RangeIndex); return ``[(reason, failing row positions)]`` and GE's result."""
        from great_expectations.core.run_identifier import RunIdentifier
        from great_expectations.validator.v1_validator import Validator

        batch = {"dataframe": frame}
        with self._lock:
            if self.validation_definition is not None:  # also stores the result for Data Docs
                result = self.validation_definition.run(
                    batch_parameters=batch,
                    expectation_parameters=parameters,
                    result_format=_result_format(),
                    run_id=RunIdentifier(run_name=_run_name(source), run_time=datetime.now(UTC)),
                )
            else:
                validator = Validator(
                    batch_definition=self.batch_definition,
                    batch_parameters=batch,
                    result_format=_result_format(),
                )
                result = validator.validate_expectation_suite(self.suite, parameters)
        failures = []
        for r in result.results:
            info = r.exception_info or {}
            if info.get("raised_exception"):
                raise AisleError(
                    f"validation suite {self.name}: {r.expectation_config.type} could not run "
                    f"({info.get('exception_message')})"
                )
            if r.success:
                continue
            index = r.result.get("unexpected_index_list")
            if index is None:  # only column-map expectations are used; anything else is a bug
                raise AisleError(
                    f"validation suite {self.name}: no failing rows for {r.expectation_config.type}"
                )
            reason = self.reasons.get(r.expectation_config.id) or r.expectation_config.meta.get("reason", "")
            failures.append((reason, np.asarray(index, dtype=np.int64)))
        return failures, result


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
