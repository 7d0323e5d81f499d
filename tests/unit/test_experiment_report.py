"""The HTML report (self-contained, with the lift plot) and CUPED's pre-period covariate from the lake."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from aisle.core.schemas import EVENT_SCHEMA
from ingestion.lake import EventLake
from monitoring.experiments.analysis import analyze
from monitoring.experiments.pre_period import activity_before
from monitoring.experiments.report import render, write

sys.path.insert(0, str(Path(__file__).parent))
from test_experiment_analysis import START, exposures, spec


def test_report_is_one_self_contained_page(tmp_path: Path) -> None:
    frame, past = exposures(6_000, [0.34, 0.33, 0.33], [0.0, 0.0, 0.5], seed=9)
    summary = analyze(
        frame, spec([0.34, 0.33, 0.33]), started_at=START, now=START + timedelta(days=7), covariate=past
    )  # type: ignore[arg-type]
    summary["attribution"] = {"exposures": len(frame), "unmatched_request_ids": 0}
    page = render(summary)
    assert page.count("<svg") == 1 and "cumulative lift" in page
    assert "v2 beats v0 on conversion" in page and "Bonferroni-widened" in page
    assert "http://" not in page.split("<svg", 1)[0] and "<script" not in page  # nothing fetched
    out = write(summary, tmp_path / "r" / "report.html")
    assert out.read_text(encoding="utf-8") == page


def _events(rows: list[tuple[str, datetime]]) -> pa.Table:
    n = len(rows)
    given = {
        "event_id": pa.array([f"e{i}" for i in range(n)]),
        "event_type": pa.array(["view"] * n),
        "user_id": pa.array([u for u, _ in rows]),
        "item_id": pa.array(["i1"] * n),
        "ts": pa.array([t for _, t in rows], pa.timestamp("us", tz="UTC")),
    }
    columns = {f.name: given.get(f.name, pa.nulls(n, f.type)) for f in EVENT_SCHEMA}
    return pa.table(columns, schema=EVENT_SCHEMA)


def test_pre_period_counts_only_what_happened_before_the_start(tmp_path: Path) -> None:
    history_end = datetime(2026, 2, 1, tzinfo=UTC)
    rows = [
        ("a", history_end - timedelta(days=1)),
        ("a", history_end - timedelta(days=3)),
        ("b", history_end - timedelta(days=2)),
        ("c", history_end - timedelta(days=60)),  # before the 28-day window
    ]
    start = datetime(2026, 11, 1, tzinfo=UTC)
    rows += [("a", start + timedelta(hours=1)), ("d", start + timedelta(hours=2))]  # during the experiment
    EventLake(tmp_path / "lake").write(_events(rows))
    counts, info = activity_before(tmp_path / "lake", start)
    assert counts.to_dict() == {"a": 2.0, "b": 1.0}
    assert info["events"] == 3 and info["window"][1].startswith("2026-01-31")  # type: ignore[index]
    none, _ = activity_before(tmp_path / "empty", start)
    assert none.empty
