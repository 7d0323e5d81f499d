"""A/B experiments: assignment time per user, analysis time for 1M exposures, measured A/A rates.

Each timing has a same-process baseline (a bare hash per user; a plain per-user groupby of the same
frame) so the ratio survives a noisy machine. The A/A rates come from seeded simulated shoppers run
through the analysis's own estimators (``monitoring.experiments.calibration``), with more runs than the
tests can afford; the mixture-SPRT rate is measured on the same daily looks for comparison.
"""

from __future__ import annotations

import hashlib
import math
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import report

from monitoring.experiments import calibration as cal
from monitoring.experiments.analysis import analyze
from serving.experiments.assignment import Assigner
from serving.experiments.spec import parse_spec
from serving.experiments.store import BUCKETS, RUNNING, Experiment


def _experiment(key: str, layer: str, lo: int, hi: int, targeting: dict[str, object]) -> Experiment:
    spec = parse_spec(
        {
            "key": key,
            "layer": layer,
            "targeting": targeting,
            "variants": [
                {"name": "control", "weight": 0.5, "strategy": "popularity"},
                {"name": "treatment", "weight": 0.5, "alias": "champion"},
            ],
        }
    )
    now = datetime.now(UTC)
    return Experiment(1, key, 1, RUNNING, spec, f"salt-{key}", layer, lo, hi, now, now, None)


def bench_assignment(n: int = 200_000) -> None:
    users = [f"user-{i}" for i in range(n)]
    assigner = Assigner(
        [
            _experiment("a", "home", 0, BUCKETS // 2, {"devices": ["mobile"]}),
            _experiment("b", "home", BUCKETS // 2, BUCKETS, {"devices": ["mobile"]}),
            _experiment("c", "search", 0, BUCKETS, {"devices": ["desktop"]}),
        ]
    )
    t0 = time.perf_counter()
    for u in users:
        assigner.assign(u, device="desktop", country="DE", returning=True)
    t_assign = time.perf_counter() - t0
    t1 = time.perf_counter()
    for u in users:
        hashlib.blake2b(u.encode(), digest_size=8).digest()
    t_hash = time.perf_counter() - t1
    report(
        "experiment_assignment",
        users=n,
        experiments=3,
        layers=2,
        us_per_user=round(t_assign / n * 1e6, 2),
        baseline_one_hash_us=round(t_hash / n * 1e6, 2),
        ratio=round(t_assign / t_hash, 1),
    )


def _exposures(n: int, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    n_users = n // 4
    past = rng.poisson(3, n_users)
    user = rng.integers(0, n_users, n)
    variant = (user % 2).astype(int)
    p_buy = 0.02 * (1 + 0.1 * variant) * (0.4 + 0.2 * past[user])
    purchased = rng.random(n) < p_buy
    start = np.datetime64("2026-11-01T00:00:00", "us")
    ts = np.sort(start + (rng.random(n) * 14 * 86_400e6).astype("timedelta64[us]"))
    frame = pd.DataFrame(
        {
            "ts": pd.to_datetime(ts, utc=True),
            "user_id": pd.Series(user).map("u{}".format),
            "variant": np.where(variant == 1, "treatment", "control"),
            "clicked": purchased | (rng.random(n) < 0.1),
            "carted": purchased | (rng.random(n) < 0.02),
            "purchased": purchased,
            "revenue": np.where(purchased, rng.lognormal(3.5, 0.5, n), 0.0),
            "latency_ms": rng.gamma(4, 5, n),
            "degraded": rng.random(n) < 0.01,
            "error": np.zeros(n, dtype=bool),
        }
    )
    return frame, pd.Series(past.astype(float), index=[f"u{u}" for u in range(n_users)])


def bench_analysis(n: int = 1_000_000) -> None:
    frame, past = _exposures(n)
    spec = parse_spec(
        {
            "key": "bench",
            "duration": "14d",
            "variants": [
                {"name": "control", "weight": 0.5, "strategy": "popularity"},
                {"name": "treatment", "weight": 0.5, "alias": "champion"},
            ],
        }
    )
    start = datetime(2026, 11, 1, tzinfo=UTC)
    t0 = time.perf_counter()
    out = analyze(frame, spec, started_at=start, now=start + timedelta(days=14), covariate=past)
    t_analyze = time.perf_counter() - t0
    t1 = time.perf_counter()
    frame.groupby("user_id")[["clicked", "carted", "purchased", "revenue"]].sum()
    t_groupby = time.perf_counter() - t1
    report(
        "experiment_analysis",
        exposures=n,
        users=out["users"],
        seconds=round(t_analyze, 2),
        baseline_groupby_seconds=round(t_groupby, 2),
        ratio=round(t_analyze / t_groupby, 1),
        timeline_points=len(out["timeline"]),
    )


def bench_attribution(n_exposures: int = 200_000, k: int = 10) -> None:
    """The exposure ⋈ outcome join (request id, else shopper + item within the window) and the
    per-exposure outcome table, in memory; baseline: a plain merge of the same events on request id."""
    import pyarrow as pa

    from aisle.core.schemas import EXPOSURE_SCHEMA
    from monitoring.attribution import attribute, exposure_outcomes

    rng = np.random.default_rng(1)
    n_users, n_items = n_exposures // 4, 20_000
    start = pd.Timestamp("2026-11-01", tz="UTC")
    ts = start + pd.to_timedelta(np.sort(rng.uniform(0, 14 * 86_400, n_exposures)), unit="s")
    users = rng.integers(0, n_users, n_exposures)
    items = rng.integers(0, n_items, (n_exposures, k))
    exposures = pa.table(
        {
            "request_id": [f"r{i}" for i in range(n_exposures)],
            "ts": pa.array(ts.to_pydatetime(), EXPOSURE_SCHEMA.field("ts").type),
            "user_id": [f"u{u}" for u in users],
            "items": pa.array([[f"i{x}" for x in row] for row in items], pa.list_(pa.string())),
            "variant": np.where(users % 2 == 0, "a", "b"),
            "experiment": ["bench"] * n_exposures,
            "experiment_version": pa.array([1] * n_exposures, pa.int32()),
            "latency_ms": rng.gamma(4, 5, n_exposures),
            "degraded": np.zeros(n_exposures, dtype=bool),
        }
    )
    exposures = pa.table(
        {
            f.name: exposures[f.name] if f.name in exposures.column_names else pa.nulls(n_exposures, f.type)
            for f in EXPOSURE_SCHEMA
        },
        schema=EXPOSURE_SCHEMA,
    )
    hit = np.flatnonzero(rng.random(n_exposures) < 0.3)  # a click on 30% of answers, a purchase on 5%
    kinds = np.where(rng.random(len(hit)) < 0.17, "purchase", "click")
    pos = rng.integers(0, k, len(hit))
    tagged = rng.random(len(hit)) < 0.7
    events = pd.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(len(hit))],
            "event_type": kinds,
            "user_id": [f"u{u}" for u in users[hit]],
            "item_id": [f"i{x}" for x in items[hit, pos]],
            "ts": ts[hit] + pd.Timedelta(seconds=30),
            "request_id": np.where(tagged, [f"r{i}" for i in hit], None),
            "value": np.where(kinds == "purchase", 25.0, np.nan),
            "quantity": 1,
        }
    )
    t0 = time.perf_counter()
    joined = attribute(exposures, events, timedelta(hours=24))
    frame = exposure_outcomes(exposures, joined)
    t_join = time.perf_counter() - t0
    t1 = time.perf_counter()
    events.merge(pd.DataFrame({"request_id": exposures["request_id"].to_pylist()}), on="request_id")
    t_base = time.perf_counter() - t1
    assert joined.counts()["reconciled"] and len(frame) == n_exposures
    report(
        "experiment_attribution",
        exposures=n_exposures,
        shown_items=n_exposures * k,
        events=len(events),
        seconds=round(t_join, 2),
        exposures_per_s=round(n_exposures / t_join),
        events_per_s=round(len(events) / t_join),
        baseline_merge_on_request_id_seconds=round(t_base, 3),
    )


def _mixture_sprt_peeking(runs: int, per_day: int, days: int, seed: int) -> float:
    """Daily looks with the normal-mixture SPRT interval (Johari et al.), mixing variance tuned at its
    most favourable value for this horizon: how often A/A tests are called."""
    rng = np.random.default_rng(seed)
    n = per_day * days
    best = 0.0
    sizes = [(d + 1) * per_day for d in range(days)]
    draws = [cal._pair(rng, n, cal.Shoppers(), 0.0) for _ in range(runs)]
    for tau_share in (0.3, 1.0, 3.0, 10.0):  # mixing variance, in units of the first look's variance
        hits = 0
        for control, treated, _, _ in draws:
            looks = list(
                zip(cal._prefix(treated.converted, sizes), cal._prefix(control.converted, sizes), strict=True)
            )
            tau2 = tau_share * (looks[0][0].variance + looks[0][1].variance)
            hit = False
            for t, c in looks:
                v = t.variance + c.variance
                diff = t.value - c.value
                log_lr = 0.5 * math.log(v / (v + tau2)) + tau2 * diff**2 / (2 * v * (v + tau2))
                hit |= log_lr >= math.log(20)
            hits += hit
        best = max(best, hits / runs)
    return best


def bench_calibration(runs: int = 2000) -> None:
    started = time.perf_counter()
    fixed = cal.fixed_horizon(runs, 2000, seed=101)
    fixed_ctr = cal.fixed_horizon(runs, 2000, seed=102, metric="ctr")
    peeking = cal.daily_peeking(runs, 150, 14, seed=103)
    power = cal.fixed_horizon(500, 6000, seed=104, lift=0.3)
    power_seq = cal.daily_peeking(500, 430, 14, seed=105, lift=0.3)["sequential"]
    mixture = _mixture_sprt_peeking(min(runs, 1000), 150, 14, seed=106)
    report(
        "experiment_calibration",
        runs=runs,
        level=0.05,
        aa_fixed_horizon_conversion=fixed,
        aa_fixed_horizon_ctr=fixed_ctr,
        aa_daily_peeking_14_days_naive=peeking["naive"],
        aa_daily_peeking_14_days_sequential=peeking["sequential"],
        aa_daily_peeking_14_days_mixture_sprt_best=mixture,
        power_30pct_lift_fixed=power,
        power_30pct_lift_sequential=power_seq,
        seconds=round(time.perf_counter() - started, 1),
    )


if __name__ == "__main__":
    bench_assignment()
    bench_analysis()
    bench_attribution()
    bench_calibration()
