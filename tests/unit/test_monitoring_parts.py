"""Monitoring's small parts: windows, the ingest log, exposure records, quarantine rates, guardrails and
the cool-down."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from aisle.core.errors import BadInput
from aisle.core.settings import load_settings
from ingestion.exposures import parse_messages, read_exposures, store
from ingestion.ingest_log import read_log, reason_kind, record_batch
from monitoring import guardrails, triggers
from monitoring.lake_quality import quarantine_rates
from monitoring.windows import day_end, make_windows, parse_span

T0 = datetime(2026, 2, 1, tzinfo=UTC)


def test_windows_follow_each_other_and_bad_spans_are_bad_input() -> None:
    w = make_windows(T0, "1d", "7d")
    assert w.current_start == T0 - timedelta(days=1)
    assert w.reference_start == T0 - timedelta(days=8)
    assert parse_span("12h", "window") == timedelta(hours=12)
    assert parse_span("2w", "window") == timedelta(weeks=2)
    for bad in ("", "1", "d", "-1d", "0d", "1y"):
        with pytest.raises(BadInput, match="--window"):
            parse_span(bad, "window")
    assert day_end(datetime(2026, 2, 1, 13, 5, tzinfo=UTC)) == datetime(2026, 2, 2, tzinfo=UTC)
    assert day_end(T0) == T0


def test_ingest_log_counts_reason_kinds_and_rates_per_channel(tmp_path: Path) -> None:
    assert reason_kind("ts: cannot parse 'x' as a time") == "ts: cannot parse '…' as a time"
    assert reason_kind("line 3: expected 5 fields, got 4") == "line N: expected N fields, got N"
    catalog = {"item_id not in catalog": 10}
    record_batch(tmp_path, "kafka:events", {"read": 100, "accepted": 90}, 10, catalog, at=T0)
    record_batch(tmp_path, "/data/a.csv", {"read": 50, "accepted": 50}, 0, {}, at=T0 + timedelta(hours=1))
    record_batch(tmp_path, "/data/b.csv", {"read": 50}, 5, {"x": 5}, at=T0 + timedelta(days=3))
    (tmp_path / f"date={T0.date()}.jsonl").open("a").write('{"torn line')  # a crash mid-write
    lines = list(read_log(tmp_path, T0.date(), (T0 + timedelta(days=1)).date()))
    assert len(lines) == 2
    rates = quarantine_rates(lines, T0, T0 + timedelta(days=1))
    assert rates["read"] == 150 and rates["refused"] == 10
    assert rates["by_channel"]["stream"] == {"read": 100, "refused": 10, "rate": 0.1}
    assert rates["by_channel"]["batch"]["rate"] == 0.0
    assert rates["by_reason"] == {"item_id not in catalog": pytest.approx(10 / 150, abs=1e-6)}


def _exposure(request_id: str, **extra: object) -> dict[str, object]:
    return {
        "request_id": request_id,
        "ts": "2026-02-01T10:00:00Z",
        "user_id": "u1",
        "items": [{"item_id": "i1", "score": 0.9}, {"item_id": "i2", "score": 0.5}],
        "model_version": "3",
        "latency_ms": 4.5,
        **extra,
    }


def test_exposure_records_parse_or_quarantine_with_a_reason(tmp_path: Path) -> None:
    good, bad = parse_messages(
        [
            json.dumps(_exposure("r1")).encode(),
            json.dumps({**_exposure("r2"), "items": ["i3", "i4"], "scores": [1.0, 0.5]}),
            b"{not json",
            json.dumps({**_exposure("r3"), "items": []}).encode(),
            json.dumps({**_exposure("r4"), "degraded": "yes"}).encode(),
            b"\xff\xfe",
        ],
        "test",
    )
    assert good["request_id"].to_pylist() == ["r1", "r2"]
    assert good["items"].to_pylist() == [["i1", "i2"], ["i3", "i4"]]
    assert good["variant"].to_pylist() == ["default", "default"]
    assert bad["reason"].to_pylist() == [
        "not valid JSON",
        "items is missing or empty",
        "degraded is not true/false",
        "not UTF-8",
    ]
    settings = load_settings(home=tmp_path)
    first = store(settings, [json.dumps(_exposure("r1")), json.dumps(_exposure("r1")), b"{"], "test")
    assert first == {"read": 3, "stored": 1, "duplicates": 1, "quarantined": 1}
    back = read_exposures(settings.paths.exposures, T0, T0 + timedelta(days=1))
    assert back["request_id"].to_pylist() == ["r1"]
    assert (
        read_exposures(settings.paths.exposures, T0 + timedelta(days=1), T0 + timedelta(days=2)).num_rows == 0
    )


def test_guardrails_from_exposures_and_prometheus_counters() -> None:
    table = pa.table(
        {
            "latency_ms": pa.array([float(x) for x in range(1, 101)]),
            "degraded": pa.array([True] * 10 + [False] * 90),
        }
    )
    measured = guardrails.from_exposures(table)
    assert measured["latency_p99_ms"] == pytest.approx(np.percentile(np.arange(1, 101), 99))
    assert measured["degraded_share"] == 0.1
    text = (
        "# TYPE aisle_requests counter\n"
        'aisle_requests_total{endpoint="/recommend"} 90\n'
        'aisle_requests_total{endpoint="/similar"} 10\n'
        "# TYPE aisle_errors counter\n"
        'aisle_errors_total{endpoint="/recommend"} 3\n'
    )
    assert guardrails.parse_counters(text) == {"aisle_requests": 100.0, "aisle_errors": 3.0}
    from serving import metrics as served

    assert (served.REQUESTS._name, served.ERRORS._name) == (guardrails.REQUESTS, guardrails.ERRORS)
    settings = load_settings(
        monitor_latency_ms=50.0, monitor_degraded_share=0.2, serving_url="http://127.0.0.1:9"
    )
    breaches = guardrails.check(settings, pa.Table.from_pydict(table.to_pydict()))["breaches"]
    assert [b["guardrail"] for b in breaches] == ["latency_p99_ms"]


def test_cooldown_lets_one_cause_fire_once_per_period(tmp_path: Path) -> None:
    state = tmp_path / "triggers.json"
    drift = triggers.Cause("drift:events", "events drifted")
    guard = triggers.Cause("guardrail:latency_p99_ms", "slow")
    day = timedelta(hours=24)
    first = triggers.decide([drift], T0, day, state, held=[])
    assert [d.action for d in first] == ["retrain"]
    again = triggers.decide([drift, guard], T0 + timedelta(hours=23), day, state, held=[])
    assert [d.action for d in again] == ["cooldown", "retrain"]  # the cool-down is per cause
    assert "cooling down until" in again[0].note
    earlier = triggers.decide([drift], T0 - timedelta(days=3), day, state, held=[])  # back-filling the past
    assert [d.action for d in earlier] == ["cooldown"]
    later = triggers.decide([drift], T0 + day, day, state, held=[])
    assert [d.action for d in later] == ["retrain"]
    held = triggers.decide([drift], T0 + 5 * day, day, state, held=["events: price is constant"])
    assert held[0].action == "held" and "price is constant" in held[0].note
    assert triggers.retrain_reason(again) == "monitor: slow"
    assert len(json.loads(state.read_text())["history"]) == 6


def test_noise_floor_shrinks_with_window_size_and_sees_lumpy_days() -> None:
    import pandas as pd

    from monitoring.noise import sampling_floor, slice_floor

    rng = np.random.default_rng(0)
    steady = pd.Series(rng.lognormal(3, 1, 20_000))
    small, large = sampling_floor(steady, 300, False), sampling_floor(steady, 20_000, False)
    assert small > 2 * large > 0
    assert sampling_floor(pd.Series(rng.choice(list("abc"), 5000)), 300, True) > 0
    # seven "days" whose level moves from day to day: a normal day already differs this much
    days = pd.Series(np.repeat(np.arange(7), 1000))
    lumpy = pd.Series(rng.normal(0, 1, 7000) + days.to_numpy() * 0.3)
    assert slice_floor(lumpy, days, False, 100) > sampling_floor(lumpy, 1000, False)
    assert slice_floor(lumpy, days.clip(upper=1), False, 100) == 0.0  # two slices: no estimate
