"""The parse stage: a table as read (CSV, JSON Lines, Parquet, Kafka) → typed rows of a contract schema.

This is the one place where events and catalog rows are typed. Coercion is vectorised in Arrow and
lossless: a row whose values cannot be coerced (``value="abc"``, ``ts="yesterday"``) or that lacks a
required column comes back rejected with its reason, because Great Expectations can only judge values
that have a type. Semantic checks (ranges, sets, the catalog) belong to the gate in
:mod:`ingestion.validation`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aisle.core.schemas import CATALOG_SCHEMA, EVENT_REQUIRED, EVENT_SCHEMA, TS_TYPE, USER_SCHEMA
from ingestion.rejects import (
    Problem,
    contiguous,
    empty_rejected,
    join_reasons,
    reason_where,
    reconcile,
    rejected_rows,
)

__all__ = [
    "CATALOG",
    "CATALOG_REQUIRED",
    "EVENTS",
    "USERS",
    "Contract",
    "parse",
    "parse_catalog",
    "parse_events",
    "timestamp_reading",
]

CATALOG_REQUIRED: Final = ("item_id",)
_SNIPPET = 60  # characters of an offending value quoted in a reason
_MISSING_MARKERS = ["", "nan", "NaN", "NAN", "null", "NULL", "None", "NA", "N/A", "n/a"]
_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_INTEGER = r"^[+-]?(\d{1,18}|[1-8]\d{18})$"  # fits int64 without overflow
_TRUE = ["true", "t", "yes", "y", "1"]
_FALSE = ["false", "f", "no", "n", "0"]
#: Identifiers and codes lose surrounding whitespace (" u1 " is u1); one that is empty after trimming is
#: judged by the gate ("empty or over 128 chars"). Free text (titles, descriptions) is kept as sent.
_TRIMMED: Final = frozenset(
    {"event_id", "event_type", "user_id", "item_id", "session_id", "request_id", "device", "country"}
)
#: Optional text fields where "" means "not given" (required ids and catalog text are judged by GE as-is).
_BLANK_IS_NULL: Final = frozenset({"session_id", "device", "country", "request_id", "brand", "description"})


@dataclass(frozen=True)
class Contract:
    """What a kind of row must look like once typed: its schema and the columns it cannot lack."""

    name: str
    schema: pa.Schema
    required: tuple[str, ...]


EVENTS: Final = Contract("events", EVENT_SCHEMA, EVENT_REQUIRED)
CATALOG: Final = Contract("catalog", CATALOG_SCHEMA, CATALOG_REQUIRED)
USERS: Final = Contract("users", USER_SCHEMA, ("user_id",))


def parse(raw: pa.Table, contract: Contract, source: str) -> tuple[pa.Table, pa.Table]:
    """Coerce ``raw`` to ``contract``; return ``(typed_rows, rejected)``.

    ``ts`` accepts Arrow timestamps/dates, ISO-8601 strings (``Z``, offsets; naive means UTC) and epoch
    numbers or numeric strings, whose unit is told by magnitude: below 1e11 seconds, below 1e14
    milliseconds, below 1e17 microseconds, else nanoseconds. Empty strings and the usual missing-value
    markers become nulls; nulls in required fields are left for the GE gate to reject with its reason.
    Unknown columns are ignored.
    """
    return _parse(raw, contract.schema, contract.required, source)


def parse_events(raw: pa.Table, source: str) -> tuple[pa.Table, pa.Table]:
    """:func:`parse` with the event contract."""
    return parse(raw, EVENTS, source)


def parse_catalog(raw: pa.Table, source: str) -> tuple[pa.Table, pa.Table]:
    """:func:`parse` with the catalog contract."""
    return parse(raw, CATALOG, source)


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
        col = contiguous(raw.column(f.name))
        typed, problem = _coercer(f.type)(col, f.name, f.type)
        columns.append(typed)
        if problem is not None and problem.null_count < len(problem):
            problems.append(problem)
    typed_table = pa.Table.from_arrays(columns, schema=schema)
    if not problems:
        return typed_table, empty_rejected()
    reason = join_reasons(problems)
    failed = pc.is_valid(reason)
    good = typed_table.filter(pc.invert(failed))
    positions = np.flatnonzero(failed.to_numpy(zero_copy_only=False))
    rejected = rejected_rows(raw.filter(failed), reason.filter(failed), source, "parse", positions)
    reconcile(n, good, rejected, "parse")
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


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t)


def _quoted_problem(mask: pa.Array, text: pa.Array, name: str, what: str) -> Problem:
    """``"<name>: cannot parse '<value>' as <what>"`` for the rows in ``mask``."""
    snippet = pc.utf8_slice_codeunits(pc.cast(text, pa.string()), 0, _SNIPPET)
    message = pc.binary_join_element_wise(f"{name}: cannot parse '", snippet, f"' as {what}", "")
    return reason_where(mask, message)


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
            return pa.array(texts, pa.string()), reason_where(pa.array(broken), f"{name}: not valid UTF-8")
    else:
        return pa.nulls(len(col), pa.string()), reason_where(
            pc.is_valid(col), f"{name}: unsupported type {src}"
        )
    if name in _TRIMMED:
        out = pc.utf8_trim_whitespace(out)
    if name in _BLANK_IS_NULL:
        out = pc.if_else(pc.equal(out, ""), pa.nulls(len(out), pa.string()), out)
    return out, None


def _utf8_or_none(value: bytes | None) -> str | None:
    try:
        return None if value is None else value.decode("utf-8")
    except UnicodeDecodeError:
        return None


#: An epoch number's unit is told by its magnitude: below 1e11 seconds, below 1e14 milliseconds, below
#: 1e17 microseconds, else nanoseconds (1e11 s is the year 5138; 1e11 ms is 1973).
EPOCH_UNITS: Final = (
    (10**11, "epoch seconds"),
    (10**14, "epoch milliseconds"),
    (10**17, "epoch microseconds"),
)
EPOCH_NANOS: Final = "epoch nanoseconds"


def _epoch_int_to_us(values: np.ndarray) -> np.ndarray:
    """Epoch integers of unknown unit → microseconds, unit told by magnitude per value."""
    a = np.abs(values)
    (s, _), (ms, _), (us, _) = EPOCH_UNITS
    with np.errstate(over="ignore"):
        return np.where(
            a < s,
            values * 1_000_000,
            np.where(a < ms, values * 1_000, np.where(a < us, values, values // 1_000)),
        )


def timestamp_reading(col: pa.Array | pa.ChunkedArray) -> dict[str, int]:
    """How :func:`parse` reads a timestamp column, as counts per kind: ``{"epoch seconds": 99_000, ...}``
    (also "ISO-8601 text", "timestamps", "missing", "unparseable"). For showing an import's mapping."""
    col = contiguous(col)
    kinds: dict[str, int] = {}

    def add(kind: str, n: int) -> None:
        if n:
            kinds[kind] = kinds.get(kind, 0) + n

    add("missing", col.null_count)
    if pa.types.is_timestamp(col.type) or pa.types.is_date(col.type):
        add("timestamps", len(col) - col.null_count)
        return kinds
    numbers = None
    if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
        numbers = pc.cast(col, pa.float64())
    elif _is_text(col.type):
        text = _null_blanks(pc.cast(col, pa.string()))
        add("missing", text.null_count - col.null_count)
        numeric = pc.fill_null(pc.match_substring_regex(text, _NUMBER), False)
        numbers = pc.cast(text.filter(numeric), pa.float64())
        others = text.filter(pc.and_(pc.invert(numeric), pc.is_valid(text)))
        parsed = _iso_ts(others) if len(others) else others
        add("ISO-8601 text", len(others) - parsed.null_count)
        add("unparseable", parsed.null_count)
    else:
        add("unparseable", len(col) - col.null_count)
    if numbers is not None and len(numbers):
        a = np.abs(pc.drop_null(numbers).to_numpy(zero_copy_only=False))
        lower = 0
        for limit, name in EPOCH_UNITS:
            add(name, int(((a >= lower) & (a < limit)).sum()))
            lower = limit
        add(EPOCH_NANOS, int((a >= lower).sum()))
    return kinds


def _epoch_float_to_us(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.abs(values)
    (s, _), (ms, _), (us_limit, _) = EPOCH_UNITS
    scale = np.where(a < s, 1e6, np.where(a < ms, 1e3, np.where(a < us_limit, 1.0, 1e-3)))
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
        return pa.nulls(len(col), TS_TYPE), reason_where(pc.is_valid(col), f"{name}: unsupported type {src}")
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
        return pa.nulls(len(col), t), reason_where(pc.is_valid(col), f"{name}: unsupported type {src}")
    if pa.types.is_floating(out.type):
        out = pc.if_else(pc.is_nan(out), pa.nulls(len(out), t), out)  # NaN is how pandas spells "missing"
        infinite = pc.fill_null(pc.is_inf(out), False)
        if pc.any(infinite).as_py():
            return pc.if_else(infinite, pa.nulls(len(out), t), out), reason_where(
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
            problem = reason_where(pc.invert(fits), f"{name}: out of range for {t}")
            wide = pc.if_else(fits, wide, pa.nulls(len(wide), pa.int64()))
        return pc.cast(wide, t), problem
    if pa.types.is_floating(src):
        floats, problem = pc.cast(col, pa.float64()), None
    elif _is_text(src):
        floats, problem = _text_to_float(col, name, "a whole number")
    else:
        return pa.nulls(len(col), t), reason_where(pc.is_valid(col), f"{name}: unsupported type {src}")
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
        return pa.nulls(len(col), t), reason_where(pc.is_valid(col), f"{name}: unsupported type {src}")
    text = pc.utf8_lower(_null_blanks(pc.cast(col, pa.string())))
    yes, no = pc.is_in(text, value_set=pa.array(_TRUE)), pc.is_in(text, value_set=pa.array(_FALSE))
    out = pc.if_else(yes, True, pc.if_else(no, False, pa.nulls(len(text), pa.bool_())))
    failed = pc.and_(pc.is_valid(text), pc.is_null(out))
    problem = _quoted_problem(failed, text, name, "true/false") if pc.any(failed).as_py() else None
    return out, problem
