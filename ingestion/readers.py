"""Read batch files (CSV, JSON Lines, Parquet) and Kafka messages into loosely typed Arrow tables, losing
no row and crashing on none.

Anything that cannot even be read as a row (malformed JSON, bytes that are not UTF-8, a CSV line with
the wrong number of fields, a line over ``AISLE_MAX_LINE_BYTES``) comes back in a ``rejected`` table with
its exact bytes and a reason; typing and semantic checks happen later in :mod:`ingestion.parsing` and
:mod:`ingestion.validation`. Every row that was read keeps its original line or message
(``ReadResult.originals``), so a row rejected later is quarantined as it was sent, not as it was parsed.
A file as a whole is refused (:class:`BadInput`) only when it has no usable header or is not the format
its name says; the message never quotes its binary content.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from aisle.core.errors import BadInput
from ingestion.rejects import empty_rejected, rejected_lines

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
#: Default of ``AISLE_MAX_LINE_BYTES``: a line, CSV record or message longer than this is quarantined.
MAX_LINE_BYTES = 1 << 20


@dataclass
class ReadResult:
    rows: pa.Table
    rejected: pa.Table
    source: str
    originals: pa.Array | None = None  # binary, one per row of ``rows``: the line or message it came from

    @property
    def read(self) -> int:
        return self.rows.num_rows + self.rejected.num_rows


def file_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise BadInput(f"{path}: unsupported file type {path.suffix!r}; use .csv, .jsonl or .parquet")
    return fmt


def read_file(path: Path, max_line_bytes: int = MAX_LINE_BYTES) -> ReadResult:
    """Read one batch file. Raises BadInput only when the file as a whole is unusable."""
    if not path.is_file():
        raise BadInput(f"{path}: no such file")
    source = str(path)
    fmt = file_format(path)
    if fmt == "parquet":
        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError) as exc:
            raise BadInput(f"{path}: not a readable Parquet file ({_short(exc)})") from None
        return ReadResult(table, empty_rejected(), source)
    data = path.read_bytes()
    if fmt == "csv":
        return read_csv_bytes(data, source, max_line_bytes)
    return read_jsonl_bytes(data, source, max_line_bytes)


def _short(exc: BaseException, limit: int = 200) -> str:
    """An exception's message, printable and short: never a dump of the file's bytes."""
    first = (str(exc).splitlines() or [type(exc).__name__])[0]
    text = "".join(c if c.isprintable() else "?" for c in first)
    return text[:limit] + ("…" if len(text) > limit else "")


# ----------------------------------------------------------------------------- JSON Lines and messages


def _stringify(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    return json.dumps(value, default=str) if isinstance(value, (dict, list)) else str(value)


def records_to_table(records: list[dict[str, object]]) -> pa.Table:
    """Dicts with arbitrary value types → an all-string table (the parser types it later)."""
    columns: dict[str, list[str | None]] = {}
    for i, rec in enumerate(records):
        for key in rec:
            if key not in columns:
                columns[key] = [None] * i
        for key, col in columns.items():
            col.append(_stringify(rec.get(key)))
    return pa.table({k: pa.array(v, pa.string()) for k, v in columns.items()})


def _too_long(n: int, limit: int, what: str) -> str:
    return f"{what} of {n:,} bytes is over the limit of {limit:,} (AISLE_MAX_LINE_BYTES)"


def _decode_one(raw: bytes) -> tuple[dict[str, object] | None, str | None]:
    """One line or message → (object, None) or (None, reason)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8: invalid byte at position {exc.start}"
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"malformed JSON: {exc.msg} at column {exc.colno}"
    except RecursionError:
        return None, "malformed JSON: nested too deeply"
    if not isinstance(obj, dict):
        return None, f"malformed JSON: expected an object, got {type(obj).__name__}"
    return obj, None


def _fast_json(lines: list[bytes], source: str, max_line_bytes: int) -> ReadResult | None:
    """Arrow's reader over the joined lines is 3-5x faster than Python's, but is used only when every line
    is plainly one object on one line of valid UTF-8, and only if it yields exactly one row per line;
    anything else (a BOM, arrays, two objects in one line, mixed types) is judged line by line."""
    if not all(v[:1] == b"{" and v[-1:] == b"}" and b"\r" not in v for v in lines):
        return None
    joined = b"\n".join(lines)
    try:
        joined.decode("utf-8")
        options = pajson.ReadOptions(block_size=max(1 << 20, 2 * max_line_bytes + 1))
        table = pajson.read_json(io.BytesIO(joined), read_options=options)
        table = pa.table({name: _as_string(table[name]) for name in table.column_names})
    except (UnicodeDecodeError, pa.ArrowException):  # pa.ArrowException: e.g. "Wrapping u�� failed"
        return None
    if table.num_rows != len(lines):
        return None
    return ReadResult(table, empty_rejected(), source, pa.array(lines, pa.binary()))


def read_json_lines(
    lines: Sequence[bytes], source: str, max_line_bytes: int = MAX_LINE_BYTES, *, blank: str | None = None
) -> ReadResult:
    """One JSON object per line (or per Kafka message). Blank lines are skipped, or rejected with the
    reason ``blank`` when given (a blank message is still a message)."""
    kept: list[bytes] = []
    bad: list[bytes] = []
    reasons: list[str] = []
    for raw in lines:
        if len(raw) > max_line_bytes:
            bad.append(raw)
            reasons.append(_too_long(len(raw), max_line_bytes, "line" if blank is None else "message"))
        elif raw.strip():
            kept.append(raw.strip())
        elif blank is not None:
            bad.append(raw)
            reasons.append(blank)
    result = _fast_json(kept, source, max_line_bytes) if kept else None
    if result is None:
        records: list[dict[str, object]] = []
        originals: list[bytes] = []
        for raw in kept:
            obj, reason = _decode_one(raw)
            if obj is None:
                bad.append(raw)
                reasons.append(str(reason))
            else:
                records.append(obj)
                originals.append(raw)
        result = ReadResult(
            records_to_table(records), empty_rejected(), source, pa.array(originals, pa.binary())
        )
    if bad:
        result.rejected = rejected_lines(bad, reasons, source)
    return result


def read_messages(values: list[bytes], source: str, max_bytes: int = MAX_LINE_BYTES) -> ReadResult:
    """Kafka message values, one JSON event each. Unlike a file, a blank message is a message: it is
    rejected with a reason, never skipped, so ``read`` always equals the number of messages."""
    return read_json_lines(values, source, max_bytes, blank="empty message")


def read_jsonl_bytes(data: bytes, source: str, max_line_bytes: int = MAX_LINE_BYTES) -> ReadResult:
    lines = data.split(b"\n")
    return read_json_lines([line.rstrip(b"\r") for line in lines], source, max_line_bytes)


def _as_string(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return column
    if pa.types.is_timestamp(column.type):
        return pc.strftime(column, "%Y-%m-%dT%H:%M:%SZ")  # %S carries the fraction
    try:
        return column.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.chunked_array([pa.array([_stringify(v) for v in column.to_pylist()], pa.string())])


# ----------------------------------------------------------------------------- CSV


def csv_records(data: bytes) -> list[bytes]:
    """Split CSV bytes into records: at newlines outside double quotes (a quoted field may hold newlines).
    Vectorised: a newline ends a record when an even number of quotes precede it."""
    buf = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(buf == 0x0A)
    quotes = np.flatnonzero(buf == 0x22)
    ends = newlines[np.searchsorted(quotes, newlines) % 2 == 0]
    starts = np.r_[0, ends + 1]
    stops = np.r_[ends, len(data)]
    return [data[a:b].rstrip(b"\r") for a, b in zip(starts.tolist(), stops.tolist(), strict=True)]


def csv_header(record: bytes, source: str, max_line_bytes: int) -> list[str]:
    """The column names, or BadInput when the first line cannot be a CSV header."""
    if len(record) > max_line_bytes:
        raise BadInput(
            f"{source}: the first line is {len(record):,} bytes, over AISLE_MAX_LINE_BYTES "
            f"({max_line_bytes:,}): not a CSV header"
        )
    try:
        text = record.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadInput(f"{source}: the first line is not UTF-8 text: not a CSV file") from None
    if not text.isprintable():
        raise BadInput(f"{source}: the first line holds control characters: not a CSV file")
    names = [name.strip() for name in next(csv.reader([text]))]
    seen: set[str] = set()
    doubled = sorted({n for n in names if n in seen or seen.add(n)})  # type: ignore[func-returns-value]
    if doubled:
        raise BadInput(f"{source}: duplicate column name(s) {', '.join(map(repr, doubled))} in the header")
    if any(not n for n in names):
        raise BadInput(f"{source}: the header has an empty column name")
    return names


def read_csv_bytes(data: bytes, source: str, max_line_bytes: int = MAX_LINE_BYTES) -> ReadResult:
    """All columns read as bytes → UTF-8 checked per value; lines with the wrong field count, or over the
    size limit, rejected with their bytes."""
    records = [r for r in csv_records(data) if r.strip()]
    if not records:
        return ReadResult(pa.table({}), empty_rejected(), source)
    names = csv_header(records[0], source, max_line_bytes)
    body = records[1:]
    oversized = [r for r in body if len(r) > max_line_bytes]
    body = [r for r in body if len(r) <= max_line_bytes]
    bad_rows: list[bytes] = list(oversized)
    reasons = [_too_long(len(r), max_line_bytes, "CSV line") for r in oversized]
    invalid: list[str] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        invalid.append(row.text or "")
        reasons.append(f"CSV line: expected {row.expected_columns} fields, got {row.actual_columns}")
        return "skip"

    header = records[0][3:] if records[0].startswith(b"\xef\xbb\xbf") else records[0]
    try:
        table = pacsv.read_csv(
            io.BytesIO(b"\n".join([header, *body])),
            read_options=pacsv.ReadOptions(block_size=max(1 << 20, 2 * max_line_bytes + len(header) + 2)),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.binary() for n in names}, strings_can_be_null=True, check_utf8=False
            ),
        )
    except pa.ArrowException as exc:
        raise BadInput(f"{source}: not a readable CSV file ({_short(exc)})") from None
    originals = _surviving(body, invalid)
    bad_rows += [t.encode("utf-8", "surrogateescape") for t in invalid]
    if originals is not None and len(originals) != table.num_rows:
        originals = None  # could not line rows up with records: keep the values as JSON instead
    columns, bad_utf8 = _utf8_columns(table)
    out = pa.table(columns)
    if bad_utf8 is not None:
        keep = pc.invert(bad_utf8)
        mask = bad_utf8.to_numpy(zero_copy_only=False)
        if originals is not None:
            bad_rows += [r for r, m in zip(originals, mask, strict=True) if m]
            originals = [r for r, m in zip(originals, mask, strict=True) if not m]
        else:
            bad_rows += [_json_of_bytes(r).encode() for r in table.filter(bad_utf8).to_pylist()]
        reasons += ["not UTF-8"] * int(mask.sum())
        out = out.filter(keep)
    rejected = rejected_lines(bad_rows, reasons, source) if bad_rows else empty_rejected()
    return ReadResult(out, rejected, source, None if originals is None else pa.array(originals, pa.binary()))


def _surviving(body: list[bytes], invalid: Sequence[str]) -> list[bytes] | None:
    """The records Arrow kept: all but the invalid ones, matched in order by their text."""
    if not invalid:
        return body
    out: list[bytes] = []
    pending = list(invalid)
    for record in body:
        if pending and record.decode("utf-8", "replace") == pending[0].rstrip("\r"):
            pending.pop(0)
            continue
        out.append(record)
    return out if not pending else None


def _utf8_columns(table: pa.Table) -> tuple[dict[str, pa.ChunkedArray | pa.Array], pa.Array | None]:
    columns: dict[str, pa.ChunkedArray | pa.Array] = {}
    bad_utf8 = None
    for name in table.column_names:
        col = table[name]
        try:
            columns[name] = col.cast(pa.string())
        except pa.ArrowInvalid:
            values = col.to_pylist()
            mask = [_not_utf8(v) for v in values]
            bad = pa.array(mask)
            bad_utf8 = bad if bad_utf8 is None else pc.or_(bad_utf8, bad)
            columns[name] = pa.array(
                [None if m or v is None else v.decode() for v, m in zip(values, mask, strict=True)],
                pa.string(),
            )
    return columns, bad_utf8


def _not_utf8(value: bytes | None) -> bool:
    if value is None:
        return False
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _json_of_bytes(row: dict[str, bytes | None]) -> str:
    return json.dumps(
        {k: (v.decode("utf-8", "backslashreplace") if v is not None else None) for k, v in row.items()}
    )
