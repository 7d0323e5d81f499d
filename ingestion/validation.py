"""The data gate: loosely typed rows → typed rows → Great Expectations suite → good rows or quarantine.

Two stages, both lossless (every input row comes out either good or rejected with a reason):

* ``parse``: coerce a table as read from CSV/JSONL/Parquet to the contract schema in Arrow, vectorised.
  Rows whose values cannot be coerced (``value="abc"``, ``ts="yesterday"``) or that lack a required
  column are rejected here, because Great Expectations can only judge values that have a type.
* ``validate``: a Great Expectations 1.x suite judges the typed rows. GE is the gate: its
  ``unexpected_index_list`` (result format COMPLETE) says which rows failed which expectation, and
  each expectation carries the reason text in its ``meta``. A batch whose failure rate exceeds
  ``settings.max_failure_rate`` is refused whole: nothing passes, everything is quarantined.

Building a GE context and suite (≈2 s, mostly importing GE) costs far more than validating a 5k-row
micro-batch (≈0.1 s), so :class:`EventGate` and :class:`CatalogGate` build them once and are reused for
every batch. Three facts about GE 1.24.1 shape the code (measured on a 2-core VM):

* a large ``value_set`` (a 20k-item catalog) is re-serialised through pydantic hundreds of times per
  validation (≈1.3 s per batch, growing with the catalog). Catalog membership is therefore looked up
  with Arrow into the column ``item_in_catalog``, and GE gates on that column.
* ``Batch.validate`` loads, and fingerprints (hashes every cell of), the DataFrame a second time; the
  gate runs the suite through one validator so each batch is loaded once.
* the pandas engine is far cheaper on Arrow-backed strings and int64 than on Python objects and int32
  (see :func:`_frame`).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aisle.core.errors import AisleError, BadInput
from aisle.core.schemas import (
    CATALOG_SCHEMA,
    EVENT_REQUIRED,
    EVENT_SCHEMA,
    EVENT_TYPES,
    MAX_ID_LENGTH,
    RATING_RANGE,
    REJECTED_SCHEMA,
    TS_TYPE,
)
from aisle.core.settings import Settings
from ingestion.readers import empty_rejected, rejected_table

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CATALOG_REQUIRED",
    "FUTURE_SKEW",
    "REJECTED_SCHEMA",
    "CatalogGate",
    "EventGate",
    "GateResult",
    "build_data_docs",
    "parse_catalog",
    "parse_events",
    "validate_catalog",
    "validate_events",
]

CATALOG_REQUIRED: Final = ("item_id",)
#: Clock skew tolerated between producers and this machine before an event counts as "from the future".
FUTURE_SKEW: Final = timedelta(minutes=5)

EVENTS_SUITE: Final = "aisle_events"
CATALOG_SUITE: Final = "aisle_catalog"
_SNIPPET = 60  # characters of an offending value quoted in a reason
_MISSING_MARKERS = ["", "nan", "NaN", "NAN", "null", "NULL", "None", "NA", "N/A", "n/a"]
_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_INTEGER = r"^[+-]?(\d{1,18}|[1-8]\d{18})$"  # fits int64 without overflow
_TRUE = ["true", "t", "yes", "y", "1"]
#: Optional text fields where "" means "not given" (required ids and catalog text are judged by GE as-is).
_BLANK_IS_NULL: Final = frozenset({"session_id", "device", "country", "request_id", "brand", "description"})
_FALSE = ["false", "f", "no", "n", "0"]


# ----------------------------------------------------------------------------- result


@dataclass
class GateResult:
    """Outcome of one batch. ``good.num_rows + bad.num_rows`` equals the rows handed in, always."""

    good: pa.Table
    bad: pa.Table
    failure_rate: float
    refused: bool
    stats: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- parse stage


def parse_events(raw: pa.Table, source: str) -> tuple[pa.Table, pa.Table]:
    """Coerce ``raw`` to :data:`EVENT_SCHEMA`; return ``(typed_rows, rejected)``.

    ``ts`` accepts Arrow timestamps/dates, ISO-8601 strings (``Z``, offsets; naive means UTC) and epoch
    numbers or numeric strings, whose unit is told by magnitude: below 1e11 seconds, below 1e14
    milliseconds, below 1e17 microseconds, else nanoseconds. Empty strings and the usual missing-value
    markers become nulls; nulls in required fields are left for the GE gate to reject with its reason.
    Unknown columns are ignored.
    """
    return _parse(raw, EVENT_SCHEMA, EVENT_REQUIRED, source)


def parse_catalog(raw: pa.Table, source: str) -> tuple[pa.Table, pa.Table]:
    """Coerce a catalog table to :data:`CATALOG_SCHEMA`, same rules as :func:`parse_events`."""
    return _parse(raw, CATALOG_SCHEMA, CATALOG_REQUIRED, source)


Problem: TypeAlias = pa.Array  # string per row: the reason, or null when the value was fine
Coercer: TypeAlias = Callable[[pa.Array, str, pa.DataType], tuple[pa.Array, Problem | None]]


def _parse(
    raw: pa.Table, schema: pa.Schema, required: Sequence[str], source: str
) -> tuple[pa.Table, pa.Table]:
    n = raw.num_rows
    columns: list[pa.Array] = []
    problems: list[Problem] = []
    for f in schema:
        if f.name not in raw.column_names:
            columns.append(pa.nulls(n, f.type))
            if f.name in required:
                problems.append(pa.repeat(pa.scalar(f"missing column {f.name}"), n))
            continue
        col = _contiguous(raw.column(f.name))
        typed, problem = _coercer(f.type)(col, f.name, f.type)
        columns.append(typed)
        if problem is not None and problem.null_count < len(problem):
            problems.append(problem)
    typed_table = pa.Table.from_arrays(columns, schema=schema)
    if not problems:
        return typed_table, empty_rejected()
    reason = _join_reasons(problems)
    failed = pc.is_valid(reason)
    good = typed_table.filter(pc.invert(failed))
    rejected = _rejected(raw.filter(failed), reason.filter(failed), source, "parse")
    _reconcile(n, good, rejected, "parse")
    return good, rejected


def _coercer(t: pa.DataType) -> Coercer:
    if pa.types.is_string(t):
        return _to_string
    if pa.types.is_timestamp(t):
        return _to_timestamp
    if pa.types.is_floating(t):
        return _to_float
    if pa.types.is_integer(t):
        return _to_int
    if pa.types.is_boolean(t):
        return _to_bool
    raise TypeError(f"no coercion to {t}")  # pragma: no cover - the contract schemas use only these


def _contiguous(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(col, pa.ChunkedArray):
        return col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    return col


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t)


def _problem(mask: pa.Array, message: pa.Array | str) -> Problem:
    """Reason where ``mask`` is true, null elsewhere (a null mask counts as false)."""
    mask = pc.fill_null(mask, False)
    msg = pa.repeat(pa.scalar(message), len(mask)) if isinstance(message, str) else message
    return pc.if_else(mask, msg, pa.nulls(len(mask), pa.string()))


def _quoted_problem(mask: pa.Array, text: pa.Array, name: str, what: str) -> Problem:
    """``"<name>: cannot parse '<value>' as <what>"`` for the rows in ``mask``."""
    snippet = pc.utf8_slice_codeunits(pc.cast(text, pa.string()), 0, _SNIPPET)
    message = pc.binary_join_element_wise(f"{name}: cannot parse '", snippet, f"' as {what}", "")
    return _problem(mask, message)


def _null_blanks(col: pa.Array) -> pa.Array:
    """Missing-value markers (``""``, ``"nan"``, ``"NULL"`` ...) become nulls; everything else is trimmed."""
    trimmed = pc.utf8_trim_whitespace(col)
    blank = pc.is_in(trimmed, value_set=pa.array(_MISSING_MARKERS))
    return pc.if_else(blank, pa.nulls(len(col), pa.string()), trimmed)


def _to_string(col: pa.Array, name: str, t: pa.DataType) -> tuple[pa.Array, Problem | None]:
    src = col.type
    if pa.types.is_string(src):
        out = col
    elif (
        _is_text(src)
        or pa.types.is_integer(src)
        or pa.types.is_null(src)
        or pa.types.is_boolean(src)
        or pa.types.is_floating(src)
    ):
        out = pc.cast(col, pa.string())
    elif pa.types.is_binary(src) or pa.types.is_large_binary(src):
        try:
            out = pc.cast(col, pa.string())
        except pa.ArrowInvalid:  # rare (readers check UTF-8 already): find the culprits one by one
            texts = [_utf8_or_none(v) for v in col.to_pylist()]
            broken = [v is not None and t is None for v, t in zip(col.to_pylist(), texts, strict=True)]
            return pa.array(texts, pa.string()), _problem(pa.array(broken), f"{name}: not valid UTF-8")
    else:
        return pa.nulls(len(col), pa.string()), _problem(pc.is_valid(col), f"{name}: unsupported type {src}")
    if name in _BLANK_IS_NULL:
        out = pc.if_else(pc.equal(out, ""), pa.nulls(len(out), pa.string()), out)
    return out, None


def _utf8_or_none(value: bytes | None) -> str | None:
    try:
        return None if value is None else value.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _epoch_int_to_us(values: np.ndarray) -> np.ndarray:
    """Epoch integers of unknown unit → microseconds, unit told by magnitude per value."""
    a = np.abs(values)
    with np.errstate(over="ignore"):
        return np.where(
            a < 10**11,
            values * 1_000_000,
            np.where(a < 10**14, values * 1_000, np.where(a < 10**17, values, values // 1_000)),
        )


def _epoch_float_to_us(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.abs(values)
    scale = np.where(a < 1e11, 1e6, np.where(a < 1e14, 1e3, np.where(a < 1e17, 1.0, 1e-3)))
    with np.errstate(invalid="ignore", over="ignore"):
        us = np.round(values * scale)
        ok = np.isfinite(us) & (np.abs(us) < 9.2e18)
    return np.where(ok, us, 0).astype(np.int64), ok


def _us_array(us: np.ndarray, valid: np.ndarray) -> pa.Array:
    return pa.array(us, type=pa.int64(), mask=~valid).cast(TS_TYPE)


def _numeric_ts(col: pa.Array, name: str) -> tuple[pa.Array, Problem | None]:
    valid = pc.is_valid(col).to_numpy(zero_copy_only=False)
    if pa.types.is_integer(col.type):
        ints = pc.fill_null(pc.cast(col, pa.int64()), 0).to_numpy()
        return _us_array(_epoch_int_to_us(ints), valid), None
    floats = pc.fill_null(pc.cast(col, pa.float64()), 0.0).to_numpy()
    us, ok = _epoch_float_to_us(floats)
    bad = valid & ~ok
    problem = _quoted_problem(pa.array(bad), col, name, "a timestamp") if bad.any() else None
    return _us_array(us, valid & ok), problem


def _iso_ts(text: pa.Array) -> pa.Array:
    """ISO-8601 strings → UTC timestamps; null where unparseable. Arrow first, pandas for the rest."""
    try:
        return pc.cast(text, TS_TYPE)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass  # naive strings, date-only, nanosecond fractions or junk: pandas parses leniently
    import pandas as pd

    parsed = pd.to_datetime(
        text.to_numpy(zero_copy_only=False), format="ISO8601", utc=True, errors="coerce"
    ).as_unit("us")
    return pa.array(parsed.asi8, type=pa.int64(), mask=np.asarray(parsed.isna())).cast(TS_TYPE)


def _to_timestamp(col: pa.Array, name: str, t: pa.DataType) -> tuple[pa.Array, Problem | None]:
    src = col.type
    if pa.types.is_timestamp(src):
        if src.tz is None:  # naive means UTC by contract
            col = col.cast(pa.timestamp(src.unit, tz="UTC"))
        return pc.cast(col, TS_TYPE, safe=False), None  # truncates nanoseconds
    if pa.types.is_date(src):
        return pc.cast(pc.cast(col, pa.timestamp("us")), TS_TYPE), None
    if pa.types.is_integer(src) or pa.types.is_floating(src):
        return _numeric_ts(col, name)
    if pa.types.is_null(src):
        return pa.nulls(len(col), TS_TYPE), None
    if not _is_text(src):
        return pa.nulls(len(col), TS_TYPE), _problem(pc.is_valid(col), f"{name}: unsupported type {src}")
    text = _null_blanks(pc.cast(col, pa.string()))
    numeric = pc.fill_null(pc.match_substring_regex(text, _NUMBER), False)
    if not pc.any(numeric).as_py():
        out = _iso_ts(text)
    else:
        integer = pc.fill_null(pc.match_substring_regex(text, _INTEGER), False)
        nulls = pa.nulls(len(text), pa.string())
        ints, _ = _numeric_ts(pc.cast(pc.if_else(integer, text, nulls), pa.int64()), name)
        floats, _ = _numeric_ts(
            pc.cast(pc.if_else(pc.and_(numeric, pc.invert(integer)), text, nulls), pa.float64()), name
        )
        iso = _iso_ts(pc.if_else(numeric, nulls, text))
        out = pc.coalesce(ints, floats, iso)
    failed = pc.and_(pc.is_valid(text), pc.is_null(out))
    problem = _quoted_problem(failed, text, name, "a timestamp") if pc.any(failed).as_py() else None
    return out, problem


def _text_to_float(col: pa.Array, name: str, what: str) -> tuple[pa.Array, Problem | None]:
    text = _null_blanks(pc.cast(col, pa.string()))
    numeric = pc.match_substring_regex(text, _NUMBER)
    out = pc.cast(pc.if_else(numeric, text, pa.nulls(len(text), pa.string())), pa.float64())
    failed = pc.and_(pc.is_valid(text), pc.invert(numeric))
    problem = _quoted_problem(failed, text, name, what) if pc.any(failed).as_py() else None
    return out, problem


def _to_float(col: pa.Array, name: str, t: pa.DataType) -> tuple[pa.Array, Problem | None]:
    src = col.type
    if pa.types.is_floating(src) or pa.types.is_integer(src) or pa.types.is_null(src):
        out = pc.cast(col, t)
    elif _is_text(src):
        out, problem = _text_to_float(col, name, "a number")
        if problem is not None:
            return out, problem
    else:
        return pa.nulls(len(col), t), _problem(pc.is_valid(col), f"{name}: unsupported type {src}")
    if pa.types.is_floating(out.type):
        out = pc.if_else(pc.is_nan(out), pa.nulls(len(out), t), out)  # NaN is how pandas spells "missing"
        infinite = pc.fill_null(pc.is_inf(out), False)
        if pc.any(infinite).as_py():
            return pc.if_else(infinite, pa.nulls(len(out), t), out), _problem(
                infinite, f"{name}: not a finite number"
            )
    return out, None


def _to_int(col: pa.Array, name: str, t: pa.DataType) -> tuple[pa.Array, Problem | None]:
    src = col.type
    info = np.iinfo(t.to_pandas_dtype())
    if pa.types.is_integer(src) or pa.types.is_null(src):
        wide = pc.cast(col, pa.int64())
        fits = pc.and_(pc.greater_equal(wide, int(info.min)), pc.less_equal(wide, int(info.max)))
        problem = None
        if not pc.all(pc.fill_null(fits, True)).as_py():
            problem = _problem(pc.invert(fits), f"{name}: out of range for {t}")
            wide = pc.if_else(fits, wide, pa.nulls(len(wide), pa.int64()))
        return pc.cast(wide, t), problem
    if pa.types.is_floating(src):
        floats, problem = pc.cast(col, pa.float64()), None
    elif _is_text(src):
        floats, problem = _text_to_float(col, name, "a whole number")
    else:
        return pa.nulls(len(col), t), _problem(pc.is_valid(col), f"{name}: unsupported type {src}")
    floats = pc.if_else(pc.is_nan(floats), pa.nulls(len(floats), pa.float64()), floats)
    whole = pc.and_(
        pc.equal(pc.floor(floats), floats),
        pc.and_(pc.greater_equal(floats, float(info.min)), pc.less_equal(floats, float(info.max))),
    )
    not_whole = pc.fill_null(pc.invert(whole), False)
    if pc.any(not_whole).as_py():
        extra = _quoted_problem(not_whole, col, name, "a whole number")
        problem = extra if problem is None else pc.coalesce(problem, extra)
    ints = pc.cast(pc.if_else(not_whole, pa.nulls(len(floats), pa.float64()), floats), t)
    return ints, problem


def _to_bool(col: pa.Array, name: str, t: pa.DataType) -> tuple[pa.Array, Problem | None]:
    src = col.type
    if pa.types.is_boolean(src) or pa.types.is_null(src):
        return pc.cast(col, t), None
    if pa.types.is_integer(src):
        col = pc.cast(col, pa.string())
    elif not _is_text(src):
        return pa.nulls(len(col), t), _problem(pc.is_valid(col), f"{name}: unsupported type {src}")
    text = pc.utf8_lower(_null_blanks(pc.cast(col, pa.string())))
    yes, no = pc.is_in(text, value_set=pa.array(_TRUE)), pc.is_in(text, value_set=pa.array(_FALSE))
    out = pc.if_else(yes, True, pc.if_else(no, False, pa.nulls(len(text), pa.bool_())))
    failed = pc.and_(pc.is_valid(text), pc.is_null(out))
    problem = _quoted_problem(failed, text, name, "true/false") if pc.any(failed).as_py() else None
    return out, problem


# ----------------------------------------------------------------------------- shared helpers


def _join_reasons(reasons: Sequence[pa.Array]) -> pa.Array:
    """Join per-row reasons with "; ", skipping nulls; null where no reason applies.

    (``binary_join_element_wise(null_handling="skip")`` drops trailing all-null rows in pyarrow 25,
    so the join is built pairwise.)
    """
    out = reasons[0]
    for more in reasons[1:]:
        out = pc.coalesce(pc.binary_join_element_wise(out, more, "; "), out, more)
    return out


_CONTROL = [chr(c) for c in range(0x20)]


def _json_text(text: pa.Array) -> pa.Array:
    """JSON string literals for a string array (nulls stay null)."""
    text = pc.replace_substring(text, "\\", "\\\\")
    text = pc.replace_substring(text, '"', '\\"')
    if pc.any(pc.match_substring_regex(text, "[\\x00-\\x1f]")).as_py():
        for ch in _CONTROL:
            text = pc.replace_substring(text, ch, json.dumps(ch)[1:-1])
    return pc.binary_join_element_wise('"', text, '"', "")


def _json_values(col: pa.Array) -> pa.Array:
    t = col.type
    if pa.types.is_dictionary(t):
        col, t = pc.cast(col, t.value_type), t.value_type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return _json_text(pc.cast(col, pa.string()))
    if pa.types.is_integer(t) or pa.types.is_boolean(t):
        return pc.cast(col, pa.string())
    if pa.types.is_floating(t):
        finite = pc.is_finite(col)
        return pc.if_else(finite, pc.cast(col, pa.string()), pa.nulls(len(col), pa.string()))
    if pa.types.is_timestamp(t):  # "2026-01-05T00:00:52.970179Z"; formatting without a zone is 25x faster
        text = pc.cast(col.cast(pa.timestamp(t.unit)), pa.string())
        text = pc.replace_substring(text, " ", "T", max_replacements=1)
        return _json_text(pc.binary_join_element_wise(text, "Z", "") if t.tz else text)
    if pa.types.is_date(t) or pa.types.is_time(t):
        return _json_text(pc.cast(col, pa.string()))
    if pa.types.is_null(t):
        return pa.nulls(len(col), pa.string())
    # rare (lists, structs, binary): one Python pass over this column only
    return pa.array(
        [None if v is None else json.dumps(v, default=str, ensure_ascii=False) for v in col.to_pylist()],
        pa.string(),
    )


def _rows_as_json(table: pa.Table) -> pa.Array:
    """Each row as a JSON object text, built column-wise with Arrow kernels (no per-row Python)."""
    n = table.num_rows
    if table.num_columns == 0:
        return pa.repeat(pa.scalar("{}"), n)
    parts: list[Any] = []  # '{"a":', values of a, ',"b":', values of b, ..., '}' joined in one pass
    for k, (name, col) in enumerate(zip(table.column_names, table.columns, strict=True)):
        parts.append(("{" if k == 0 else ",") + json.dumps(name, ensure_ascii=False) + ":")
        parts.append(pc.fill_null(_json_values(_contiguous(col)), "null"))
    parts.append("}")
    return pc.binary_join_element_wise(*parts, "")


def _rejected(rows: pa.Table, reasons: pa.Array, source: str, stage: str) -> pa.Table:
    return rejected_table(_rows_as_json(rows), pc.cast(reasons, pa.string()), source, stage)


def _reconcile(total: int, good: pa.Table, bad: pa.Table, where: str) -> None:
    if good.num_rows + bad.num_rows != total:  # a gate that loses rows is a bug, never a log line
        raise AisleError(
            f"reconciliation failed in {where}: {good.num_rows} good + {bad.num_rows} bad != {total} rows"
        )


def _conform(table: pa.Table, schema: pa.Schema, required: Sequence[str], what: str) -> pa.Table:
    """Select and order the contract columns; optional ones may be absent. Types must already match."""
    missing = [n for n in required if n not in table.column_names]
    if missing:
        raise BadInput(f"{what} lacks required column(s) {', '.join(missing)}; run the parse stage first")
    arrays = []
    for f in schema:
        if f.name not in table.column_names:
            arrays.append(pa.nulls(table.num_rows, f.type))
            continue
        col = table.column(f.name)
        if col.type != f.type:
            try:
                col = col.cast(f.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise BadInput(
                    f"{what} column {f.name} is {col.type}, not {f.type}; run the parse stage first ({exc})"
                ) from None
        arrays.append(col)
    return pa.Table.from_arrays(arrays, schema=schema)


def _rate_text(rate: float, limit: float) -> str:
    a, b = f"{rate:.2f}", f"{limit:.2f}"
    if a == b:  # 0.2049 > 0.20 must not read "0.20 > 0.20"
        a = f"{rate:.4f}"
    return f"{a} > {b}"


# ----------------------------------------------------------------------------- Great Expectations


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


class _GxSuite:
    """One GE context + pandas data source + whole-DataFrame batch definition + suite, built once.

    ``gx_root`` None: an ephemeral context (nothing written, nothing kept between batches).
    ``gx_root`` set: a file context there, whose results store keeps every validation for Data Docs.
    """

    def __init__(self, name: str, expectations: Iterable[Any], gx_root: Path | None) -> None:
        import great_expectations as gx

        self.name = name
        self.context = _gx_context(gx_root)
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


def _gx_context(gx_root: Path | None) -> Any:
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


def _event_expectations() -> list[Any]:
    import great_expectations.expectations as gxe
    from great_expectations.expectations.row_conditions import Column

    lo, hi = RATING_RANGE
    rating = Column("event_type") == "rating"
    out: list[Any] = [
        gxe.ExpectColumnValuesToNotBeNull(column=c, meta={"reason": f"{c} is null"}) for c in EVENT_REQUIRED
    ]
    out += [
        gxe.ExpectColumnValueLengthsToBeBetween(
            column=c,
            min_value=1,
            max_value=MAX_ID_LENGTH,
            meta={"reason": f"{c} empty or over {MAX_ID_LENGTH} chars"},
        )
        for c in ("event_id", "user_id", "item_id")
    ]
    out += [
        gxe.ExpectColumnValueLengthsToBeBetween(
            column=c, max_value=MAX_ID_LENGTH, meta={"reason": f"{c} over {MAX_ID_LENGTH} chars"}
        )
        for c in ("session_id", "request_id")
    ]
    out += [
        gxe.ExpectColumnValuesToBeInSet(
            column="event_type", value_set=list(EVENT_TYPES), meta={"reason": "event_type not in allowed set"}
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column="value", row_condition=rating, meta={"reason": "value missing for rating"}
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="value",
            min_value=lo,
            max_value=hi,
            row_condition=rating,
            meta={"reason": f"value out of range {lo:g}..{hi:g} for rating"},
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="ts", max_value={"$PARAMETER": "ts_max"}, meta={"reason": "ts in the future"}
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="ts", min_value={"$PARAMETER": "ts_min"}, meta={"reason": "ts before the shop opened"}
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="quantity", min_value=1, meta={"reason": "quantity below 1"}
        ),
        # True/False per row when a catalog is known, null (= not judged) when it is not; see module doc
        gxe.ExpectColumnValuesToBeInSet(
            column="item_in_catalog", value_set=[True], meta={"reason": "item_id not in catalog"}
        ),
    ]
    return out


def _catalog_expectations() -> list[Any]:
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectColumnValuesToNotBeNull(column="item_id", meta={"reason": "item_id is null"}),
        gxe.ExpectColumnValuesToBeUnique(column="item_id", meta={"reason": "item_id duplicated"}),
        gxe.ExpectColumnValueLengthsToBeBetween(
            column="item_id",
            min_value=1,
            max_value=MAX_ID_LENGTH,
            meta={"reason": f"item_id empty or over {MAX_ID_LENGTH} chars"},
        ),
        gxe.ExpectColumnValuesToNotBeNull(column="title", meta={"reason": "title is null"}),
        gxe.ExpectColumnValuesToNotBeNull(column="category", meta={"reason": "category is null"}),
        gxe.ExpectColumnValueLengthsToBeBetween(
            column="category", min_value=1, meta={"reason": "category is empty"}
        ),
        gxe.ExpectColumnValuesToBeBetween(column="price", min_value=0, meta={"reason": "price below 0"}),
    ]


# Only the columns the suites look at travel to pandas (the conversion is a large share of the cost).
_EVENT_FRAME_COLUMNS: Final = (
    "event_id",
    "event_type",
    "user_id",
    "item_id",
    "ts",
    "value",
    "quantity",
    "session_id",
    "request_id",
)
_CATALOG_FRAME_COLUMNS: Final = ("item_id", "title", "category", "price")


def _frame(table: pa.Table) -> pd.DataFrame:
    """The pandas view GE validates. Strings stay Arrow-backed (``string[pyarrow]``): converting them to
    Python objects would cost about a quarter of the gate's time. Integers go as int64 because GE 1.24's
    pandas "between" is vectorised only for dtypes equal to ``int``/``float`` and calls Python per row
    for int32."""
    import pandas as pd

    arrays = [pc.cast(col, pa.int64()) if pa.types.is_integer(col.type) else col for col in table.columns]
    arrow_strings = pd.StringDtype("pyarrow")
    return pa.Table.from_arrays(arrays, names=table.column_names).to_pandas(
        types_mapper=lambda t: arrow_strings if t == pa.string() else None
    )


class _Gate:
    """Shared decision logic: GE verdicts per row → good/bad split, failure rate, refusal."""

    stage = "validate"

    def __init__(self, settings: Settings, suite: _GxSuite) -> None:
        self.settings = settings
        self._gx = suite

    def _decide(
        self,
        rows: pa.Table,
        failures: list[tuple[str, np.ndarray]],
        *,
        source: str,
        earlier: pa.Table,
        already_rejected: int,
        stats: dict[str, Any],
    ) -> GateResult:
        n = rows.num_rows
        per_reason: list[pa.Array] = []
        failed = np.zeros(n, dtype=bool)
        counts: dict[str, int] = dict(stats.pop("failures", {}))
        for reason, index in failures:
            mask = np.zeros(n, dtype=bool)
            mask[index] = True
            failed |= mask
            per_reason.append(_problem(pa.array(mask), reason))
            counts[reason] = counts.get(reason, 0) + len(index)
        total = n + earlier.num_rows + already_rejected
        n_bad = int(failed.sum()) + earlier.num_rows + already_rejected
        rate = n_bad / total if total else 0.0
        limit = self.settings.max_failure_rate
        refused = rate > limit
        none = pa.nulls(n, pa.string())
        own = _join_reasons(per_reason) if per_reason else none
        if refused:
            prefix = f"batch refused (failure rate {_rate_text(rate, limit)}): "
            own = pc.binary_join_element_wise(prefix, pc.fill_null(own, "row passed its checks"), "")
            earlier = earlier.set_column(
                1, "reason", pc.binary_join_element_wise(prefix, earlier["reason"], "")
            )
            good = rows.slice(0, 0)
            bad_now = _rejected(rows, own, source, self.stage)
        else:
            keep = pa.array(~failed)
            good = rows.filter(keep)
            bad_now = _rejected(
                rows.filter(pa.array(failed)), own.filter(pa.array(failed)), source, self.stage
            )
        bad = pa.concat_tables([earlier.cast(REJECTED_SCHEMA), bad_now]) if earlier.num_rows else bad_now
        _reconcile(n + earlier.num_rows, good, bad, f"{self._gx.name} gate ({source or 'batch'})")
        stats.update(
            source=source,
            suite=self._gx.name,
            rows=n + earlier.num_rows,
            good=good.num_rows,
            bad=bad.num_rows,
            failure_rate=round(rate, 6),
            max_failure_rate=limit,
            refused=refused,
            failures=dict(sorted(counts.items())),
        )
        return GateResult(good=good, bad=bad, failure_rate=rate, refused=refused, stats=stats)


class EventGate(_Gate):
    """The event suite, built once; :meth:`validate` runs it on one batch (a file or a micro-batch).

    ``docs=True`` keeps every result in the file context under ``settings.paths.gx`` for Data Docs;
    a stream should leave it off (one stored result per micro-batch adds up).
    """

    def __init__(self, settings: Settings, *, docs: bool = False) -> None:
        super().__init__(settings, _GxSuite(EVENTS_SUITE, _event_expectations(), _docs_root(settings, docs)))
        self._ts_min = _parse_instant(settings.shop_opened_at, "AISLE_SHOP_OPENED_AT")

    def validate(
        self,
        events: pa.Table,
        *,
        known_items: set[str] | Sequence[str] | pa.Array | None = None,
        source: str = "",
        now: datetime | None = None,
        already_rejected: int = 0,
    ) -> GateResult:
        """Judge typed events (output of :func:`parse_events`).

        ``known_items``: the catalog's item ids; None means no catalog is known and the check is skipped.
        ``already_rejected``: rows of the same batch rejected upstream (reader, parse stage); they count
        towards the failure rate, so a file that is mostly unparseable is refused, not trickled through.
        """
        started = time.perf_counter()
        rows = _conform(events, EVENT_SCHEMA, EVENT_REQUIRED, "events")
        stats: dict[str, Any] = {}
        failures: list[tuple[str, np.ndarray]] = []
        if rows.num_rows:
            frame_table = rows.select(list(_EVENT_FRAME_COLUMNS))
            in_catalog = (
                pc.is_in(rows["item_id"], value_set=_value_set(known_items))
                if known_items is not None
                else pa.nulls(rows.num_rows, pa.bool_())
            )
            frame_table = frame_table.append_column("item_in_catalog", in_catalog)
            t0 = time.perf_counter()
            frame = _frame(frame_table)
            t1 = time.perf_counter()
            now = now or datetime.now(UTC)
            parameters = {"ts_min": self._ts_min, "ts_max": now + FUTURE_SKEW}
            failures, _ = self._gx.run(frame, parameters, source)
            stats["seconds"] = {
                "to_pandas": round(t1 - t0, 4),
                "great_expectations": round(time.perf_counter() - t1, 4),
            }
        result = self._decide(
            rows,
            failures,
            source=source,
            earlier=empty_rejected(),
            already_rejected=already_rejected,
            stats=stats,
        )
        result.stats.setdefault("seconds", {})["total"] = round(time.perf_counter() - started, 4)
        return result


class CatalogGate(_Gate):
    """The catalog suite; :meth:`validate` parses a (possibly untyped) catalog table and judges it."""

    def __init__(self, settings: Settings, *, docs: bool = False) -> None:
        super().__init__(
            settings, _GxSuite(CATALOG_SUITE, _catalog_expectations(), _docs_root(settings, docs))
        )

    def validate(self, catalog: pa.Table, *, source: str = "") -> GateResult:
        started = time.perf_counter()
        typed, parse_bad = parse_catalog(catalog, source)
        failures: list[tuple[str, np.ndarray]] = []
        if typed.num_rows:
            failures, _ = self._gx.run(_frame(typed.select(list(_CATALOG_FRAME_COLUMNS))), {}, source)
        stats: dict[str, Any] = {"parse_rejected": parse_bad.num_rows}
        result = self._decide(
            typed, failures, source=source, earlier=parse_bad, already_rejected=0, stats=stats
        )
        result.stats["seconds"] = {"total": round(time.perf_counter() - started, 4)}
        return result


def _value_set(items: set[str] | Sequence[str] | pa.Array) -> pa.Array:
    if isinstance(items, pa.Array | pa.ChunkedArray):
        return pc.cast(_contiguous(items), pa.string())
    return pa.array(list(items), pa.string())


def _parse_instant(text: str, what: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise BadInput(
            f"{what} must be an ISO-8601 instant like 2020-01-01T00:00:00Z (got {text!r})"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _docs_root(settings: Settings, docs: bool) -> Path | None:
    return settings.paths.gx if docs else None


# ----------------------------------------------------------------------------- module-level API


@lru_cache(maxsize=8)
def _cached_event_gate(settings: Settings, docs: bool) -> EventGate:
    return EventGate(settings, docs=docs)


@lru_cache(maxsize=8)
def _cached_catalog_gate(settings: Settings, docs: bool) -> CatalogGate:
    return CatalogGate(settings, docs=docs)


def validate_events(
    events: pa.Table,
    settings: Settings,
    *,
    known_items: set[str] | Sequence[str] | pa.Array | None = None,
    source: str = "",
    docs: bool = False,
    now: datetime | None = None,
    already_rejected: int = 0,
) -> GateResult:
    """Run the event suite on typed events through a gate cached per settings (see :class:`EventGate`)."""
    return _cached_event_gate(settings, docs).validate(
        events, known_items=known_items, source=source, now=now, already_rejected=already_rejected
    )


def validate_catalog(
    catalog: pa.Table, settings: Settings, source: str = "", *, docs: bool = False
) -> GateResult:
    """Parse and judge a catalog table; parse rejects are in ``bad`` with stage "parse"."""
    return _cached_catalog_gate(settings, docs).validate(catalog, source=source)


def build_data_docs(settings: Settings) -> Path:
    """Render GE Data Docs (suites + results stored by ``docs=True`` gates) and return ``index.html``."""
    root = settings.paths.gx
    root.mkdir(parents=True, exist_ok=True)
    _cached_event_gate(settings, True)  # makes sure both suites are in the file context
    _cached_catalog_gate(settings, True)
    context = _gx_context(root)
    sites = context.build_data_docs()
    index = root / "uncommitted" / "data_docs" / "local_site" / "index.html"
    if not index.exists():  # a site configured elsewhere: trust what GE reports
        url = next(iter(sites.values()), "")
        index = Path(re.sub(r"^file://", "", url))
    if not index.exists():
        raise AisleError(f"Data Docs were built but no index.html was found under {root}")
    return index
