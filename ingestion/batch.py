"""`aisle ingest batch`: files and directories into the lake, catalogs and users first.

Each file's kind comes from its columns (or ``--kind``), never from its name. Small event files are
validated together (one Great Expectations run and one lake write for up to ``CHUNK_ROWS`` rows) while
each file keeps its own refusal decision, counts and reasons. A file that cannot be used at all (no
header, not Parquet, a duplicate column) is reported in the summary and fails the job, after the other
files went in: the job is partly done, and says so.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

from aisle.core.errors import BadInput
from aisle.core.settings import Settings
from ingestion.kinds import KINDS, columns_of, kind_of, unknown_kind
from ingestion.outcomes import job_problem, top_reasons
from ingestion.pipeline import IngestCounts, Ingester
from ingestion.readers import ReadResult, file_format, read_file

DIR_SUFFIXES: Final = (".csv", ".jsonl", ".ndjson", ".parquet")
#: Event rows validated in one GE run when files are small (bigger files go alone).
CHUNK_ROWS: Final = 50_000

Progress = Callable[[str, int], None]


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """The files to ingest. A directory contributes its .csv, .jsonl, .ndjson and .parquet files (a stray
    manifest.json is not mistaken for events); files named explicitly may also be .json (JSON Lines).
    A path that does not exist or has an unsupported type is bad input: nothing is ingested."""
    files: list[Path] = []
    for path in paths:
        if not path.exists():
            raise BadInput(f"{path}: no such file or directory")
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in DIR_SUFFIXES)
        else:
            file_format(path)  # raises BadInput for an unsupported type
            files.append(path)
    if not files:
        raise BadInput("no input files found (expected .csv, .jsonl or .parquet)")
    return files


def sort_by_kind(
    files: list[Path], kind: str | None, max_line_bytes: int
) -> tuple[dict[str, list[Path]], dict[Path, str]]:
    """Files per kind, and the files that could not be used with the reason why."""
    if kind is not None and kind not in KINDS:
        raise BadInput(f"--kind must be one of {', '.join(KINDS)} (got {kind!r})")
    kinds: dict[str, list[Path]] = {k: [] for k in KINDS}
    unusable: dict[Path, str] = {}
    for f in files:
        if kind is not None:
            kinds[kind].append(f)
            continue
        try:
            columns = columns_of(f, max_line_bytes)
        except BadInput as exc:
            unusable[f] = str(exc)
            continue
        found = kind_of(columns)
        if found is None and not columns:
            found = "events"  # no header to judge (e.g. JSON Lines starting with junk): the reader says why
        if found is None:
            unusable[f] = unknown_kind(f, columns)
        else:
            kinds[found].append(f)
    return kinds, unusable


def ingest_batch(
    settings: Settings, paths: list[Path], progress: Progress | None = None, *, kind: str | None = None
) -> dict[str, Any]:
    """Catalogs and users first (so events can be checked against the catalog), then events."""
    started = time.perf_counter()
    limit = settings.max_line_bytes
    kinds, unusable = sort_by_kind(expand_paths(paths), kind, limit)
    ingester = Ingester(settings, docs=True)
    problems: list[str | None] = []
    catalog_summary: dict[str, int] = {}
    for f in kinds["catalog"]:
        try:
            summary = ingester.ingest_catalog(read_file(f, limit).rows, str(f))
        except BadInput as exc:
            unusable[f] = str(exc)
            continue
        for key, value in summary.items():
            catalog_summary[key] = catalog_summary.get(key, 0) + value if key != "catalog_size" else value
        problems.append(f"{f}: catalog refused whole" if summary["refused"] else None)
    users: dict[str, int] = {}
    for f in kinds["users"]:
        try:
            for key, value in ingester.ingest_users(read_file(f, limit).rows, str(f)).items():
                users[key] = users.get(key, 0) + value if key != "users" else value
        except BadInput as exc:
            unusable[f] = str(exc)
            continue
        problems.append(f"{f}: no user row passed" if not users.get("accepted") else None)
    totals, files, reasons = _ingest_event_files(ingester, kinds["events"], unusable, limit, progress)
    problems += [f["problem"] for f in files]
    problems += [unusable[f] for f in sorted(unusable, key=str)]
    from ingestion.validation import build_data_docs

    docs = build_data_docs(settings, *ingester.gates())
    inputs = len(files) + len(kinds["catalog"]) + len(kinds["users"]) + len(unusable)
    problem = job_problem(problems, "ingest batch", inputs)
    return {
        "ok": problem is None,
        "problem": problem,
        **totals.as_dict(),
        "top_reasons": top_reasons(reasons),
        "files": files,
        "unusable_files": {str(f): why for f, why in sorted(unusable.items(), key=lambda kv: str(kv[0]))},
        "catalog": catalog_summary or None,
        "users": users.get("users") or None,  # the number of users the lake knows after the job
        "users_rows": users or None,
        "lake": str(settings.paths.lake),
        "quarantine": str(settings.paths.quarantine),
        "data_docs": str(docs),
        "seconds": round(time.perf_counter() - started, 3),
    }


def _ingest_event_files(
    ingester: Ingester,
    paths: list[Path],
    unusable: dict[Path, str],
    limit: int,
    progress: Progress | None,
) -> tuple[IngestCounts, list[dict[str, Any]], Counter[str]]:
    totals = IngestCounts()
    files: list[dict[str, Any]] = []
    reasons: Counter[str] = Counter()
    chunk: list[ReadResult] = []

    def flush() -> None:
        for result, outcome in zip(chunk, ingester.ingest_many(chunk), strict=True):
            totals.__iadd__(outcome.counts)
            reasons.update(outcome.reasons)
            problem = outcome.problem(result.source, ingester.settings)
            files.append(
                {
                    "path": result.source,
                    **outcome.counts.as_dict(),
                    "top_reasons": top_reasons(outcome.reasons),
                    "ok": problem is None,
                    "problem": problem,
                }
            )
            if progress:
                progress(result.source, outcome.counts.read)
        chunk.clear()

    for f in paths:
        try:
            result = read_file(f, limit)
        except BadInput as exc:
            unusable[f] = str(exc)
            continue
        if chunk and sum(r.read for r in chunk) + result.read > CHUNK_ROWS:
            flush()
        chunk.append(result)
    if chunk:
        flush()
    totals.check("batch")
    return totals, files, reasons
