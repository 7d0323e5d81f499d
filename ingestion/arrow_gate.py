"""A second executor of the same expectation suite, in Arrow, for small stream micro-batches.

Great Expectations costs about 0.1 s per run whatever the batch size (building a validator, metric
graphs, result objects), which is most of a 1-event micro-batch's time. The suite in
:mod:`ingestion.expectations` stays the one definition of the rules and their reasons: this module reads
its expectation objects (type, column, bounds, value set, row condition, ``meta["reason"]``) and
evaluates them with Arrow kernels, returning failures in the shape and order GE's runs give. An
expectation it does not know makes it refuse to build, so nothing is silently skipped; the gate then
stays on GE. ``tests/unit/test_arrow_gate.py`` runs both executors over every case in the tests and
requires identical verdicts and reasons.

Semantics copied from GE 1.24's pandas engine: map expectations ignore nulls (``not_be_null`` excepted);
bounds are inclusive unless ``strict_*``; a row condition selects the rows it is true for (a null is
"not equal" to anything and fails every other comparison); ``be_unique`` flags every occurrence of a
duplicated value. The null cases were found by the equivalence test, not assumed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aisle.core.errors import AisleError

Check = Callable[[pa.Table, dict[str, Any]], pa.Array]  # → a boolean mask of failing rows

_COMPARE: Final = {
    "==": pc.equal,
    "!=": pc.not_equal,
    "<": pc.less,
    "<=": pc.less_equal,
    ">": pc.greater,
    ">=": pc.greater_equal,
}


class Unsupported(AisleError):
    """The suite holds an expectation this executor cannot evaluate exactly."""


def _value(bound: Any, parameters: dict[str, Any]) -> Any:
    if isinstance(bound, dict) and "$PARAMETER" in bound:
        return parameters[bound["$PARAMETER"]]
    return bound


def _scalar(value: Any, column: pa.Array) -> pa.Scalar:
    if isinstance(value, datetime) and pa.types.is_timestamp(column.type):
        return pa.scalar(value, type=column.type)
    return pa.scalar(value)


def _column(table: pa.Table, name: str) -> pa.Array:
    col = table[name]
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


def _condition(expectation: Any) -> Callable[[pa.Table], pa.Array] | None:
    condition = getattr(expectation, "row_condition", None)
    if condition is None:
        return None
    kind = getattr(condition, "type", None)
    operator = getattr(condition, "operator", None)
    if kind != "comparison" or operator not in _COMPARE:
        raise Unsupported(f"row condition {condition!r}")
    name = condition.column.name
    parameter = condition.parameter

    def selected(table: pa.Table) -> pa.Array:
        column = _column(table, name)
        # as GE's pandas engine: a null is not equal to anything, and fails every other comparison
        return pc.fill_null(_COMPARE[operator](column, _scalar(parameter, column)), operator == "!=")

    return selected


def _null(column: pa.Array) -> pa.Array:
    nulls = pc.is_null(column)
    return (
        pc.or_(nulls, pc.fill_null(pc.is_nan(column), False)) if pa.types.is_floating(column.type) else nulls
    )


def _compile(expectation: Any) -> Check:
    kind = type(expectation).__name__
    name = expectation.column
    if getattr(expectation, "mostly", 1) not in (1, 1.0):
        raise Unsupported(f"{kind} with mostly={expectation.mostly}")

    if kind == "ExpectColumnValuesToNotBeNull":
        return lambda table, _p: _null(_column(table, name))

    if kind == "ExpectColumnValueLengthsToBeBetween":
        low, high = expectation.min_value, expectation.max_value

        def lengths(table: pa.Table, parameters: dict[str, Any]) -> pa.Array:
            size = pc.utf8_length(_column(table, name))
            bad = pa.repeat(pa.scalar(False), len(size))
            lo, hi = _value(low, parameters), _value(high, parameters)
            if lo is not None:
                bad = pc.or_(bad, pc.less(size, lo))
            if hi is not None:
                bad = pc.or_(bad, pc.greater(size, hi))
            return pc.fill_null(bad, False)

        return lengths

    if kind == "ExpectColumnValuesToBeInSet":
        values = list(expectation.value_set)

        def in_set(table: pa.Table, _p: dict[str, Any]) -> pa.Array:
            column = _column(table, name)
            allowed = pa.array(values, type=column.type)
            return pc.and_(pc.is_valid(column), pc.invert(pc.is_in(column, value_set=allowed)))

        return in_set

    if kind == "ExpectColumnValuesToBeBetween":
        low, high = expectation.min_value, expectation.max_value
        strict_low, strict_high = bool(expectation.strict_min), bool(expectation.strict_max)

        def between(table: pa.Table, parameters: dict[str, Any]) -> pa.Array:
            column = _column(table, name)
            bad = pa.repeat(pa.scalar(False), len(column))
            lo, hi = _value(low, parameters), _value(high, parameters)
            if lo is not None:
                below = pc.less_equal if strict_low else pc.less
                bad = pc.or_(bad, below(column, _scalar(lo, column)))
            if hi is not None:
                above = pc.greater_equal if strict_high else pc.greater
                bad = pc.or_(bad, above(column, _scalar(hi, column)))
            return pc.fill_null(bad, False)

        return between

    if kind == "ExpectColumnValuesToBeUnique":

        def unique(table: pa.Table, _p: dict[str, Any]) -> pa.Array:
            column = _column(table, name)
            counts = pc.value_counts(column)
            doubled = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
            return pc.and_(pc.is_valid(column), pc.is_in(column, value_set=doubled))

        return unique

    raise Unsupported(f"{kind} on {name}")


class ArrowSuite:
    """The expectations of a GE suite, compiled to Arrow checks, in the suite's order."""

    def __init__(self, name: str, expectations: Iterable[Any]) -> None:
        self.name = name
        self.checks: list[tuple[str, Check, Callable[[pa.Table], pa.Array] | None]] = []
        for expectation in expectations:
            reason = (expectation.meta or {}).get("reason")
            if not reason:
                raise Unsupported(f"{type(expectation).__name__} on {expectation.column} has no reason")
            self.checks.append((reason, _compile(expectation), _condition(expectation)))

    def run(self, table: pa.Table, parameters: dict[str, Any]) -> list[tuple[str, np.ndarray]]:
        """``[(reason, failing row positions)]`` for the checks that failed, as :meth:`GxSuite.run`."""
        failures = []
        for reason, check, condition in self.checks:
            bad = check(table, parameters)
            if condition is not None:
                bad = pc.and_(bad, condition(table))
            index = np.flatnonzero(bad.to_numpy(zero_copy_only=False))
            if len(index):
                failures.append((reason, index.astype(np.int64)))
        return failures
