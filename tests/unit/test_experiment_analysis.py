"""The analysis end to end on attributed exposures: per-variant metrics, lift, SRM, guardrails, CUPED,
the sequential interval and the timeline, on seeded data with known truth."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from monitoring.experiments.analysis import analyze
from serving.experiments.spec import parse_spec

START = datetime(2026, 11, 1, tzinfo=UTC)


def exposures(
    n_users: int, weights: list[float], lifts: list[float], *, seed: int = 0, base: float = 0.05
) -> tuple[pd.DataFrame, pd.Series]:
    """Shoppers split by ``weights``; variant i buys with probability base·(1+lifts[i]), per exposure."""
    rng = np.random.default_rng(seed)
    variant = rng.choice(len(weights), n_users, p=weights)
    past = rng.poisson(3, n_users)
    per_user = 1 + rng.poisson(1.5, n_users)
    user = np.repeat(np.arange(n_users), per_user)
    v = variant[user]
    p_buy = base * (1 + np.asarray(lifts))[v] * (0.4 + 0.2 * past[user])
    purchased = rng.random(len(user)) < p_buy
    clicked = purchased | (rng.random(len(user)) < 0.1)
    frame = pd.DataFrame(
        {
            "ts": [
                START + timedelta(seconds=float(s)) for s in np.sort(rng.uniform(0, 7 * 86_400, len(user)))
            ],
            "user_id": [f"u{u}" for u in user],
            "variant": [f"v{i}" for i in v],
            "clicked": clicked,
            "carted": purchased | (rng.random(len(user)) < 0.02),
            "purchased": purchased,
            "revenue": np.where(purchased, rng.lognormal(3.5, 0.5, len(user)), 0.0),
            "latency_ms": rng.gamma(4, 5, len(user)),
            "degraded": rng.random(len(user)) < 0.01,
            "error": np.zeros(len(user), dtype=bool),
        }
    )
    return frame, pd.Series(past, index=[f"u{u}" for u in range(n_users)], dtype=float)


def spec(weights: list[float], **extra: object) -> object:
    variants = [{"name": f"v{i}", "weight": w, "strategy": "popularity"} for i, w in enumerate(weights)]
    return parse_spec({"key": "t", "variants": variants, "duration": "7d", **extra})


def test_a_planted_lift_is_found_with_every_number_the_issue_asks_for() -> None:
    frame, past = exposures(20_000, [0.5, 0.5], [0.0, 0.4], seed=1)
    out = analyze(frame, spec([0.5, 0.5]), started_at=START, now=START + timedelta(days=7), covariate=past)  # type: ignore[arg-type]
    v0, v1 = out["variants"]["v0"], out["variants"]["v1"]
    assert v0["users"] + v1["users"] == 20_000 and out["exposures"] == len(frame)
    for key in ("exposures", "ctr", "add_to_cart_rate", "conversion", "revenue_per_user"):
        assert v0[key] is not None and v1[key] is not None
    conv = out["comparisons"]["v1"]["conversion"]
    assert conv["significant"] and conv["lift"] > 0.2 and conv["ci_low"] > 0
    assert conv["sequential"]["significant"]  # at the planned end the sequential interval agrees
    assert conv["cuped"]["ci_high"] - conv["cuped"]["ci_low"] < conv["ci_high"] - conv["ci_low"]
    assert out["cuped"]["conversion"]["variance_reduction"] > 0.01
    assert not out["srm"]["flagged"]
    assert out["guardrails"]["ok"] and out["guardrails"]["variants"]["v0"]["p99_latency_ms"] > 0
    assert "v1 beats v0 on conversion" in out["verdict"]
    assert len(out["timeline"]) == 24 and out["timeline"][-1]["users"] == 20_000
    last = out["timeline"][-1]["v1"]
    assert last["seq_low"] <= last["ci_low"] and last["seq_high"] >= last["ci_high"]  # the band is wider


def test_early_looks_are_wide_and_not_called() -> None:
    frame, _ = exposures(20_000, [0.5, 0.5], [0.0, 0.0], seed=2)
    early = analyze(frame, spec([0.5, 0.5], duration="70d"), started_at=START, now=START + timedelta(days=7))  # type: ignore[arg-type]
    seq = early["comparisons"]["v1"]["conversion"]["sequential"]
    fixed = early["comparisons"]["v1"]["conversion"]
    assert seq["ci_high"] - seq["ci_low"] > 2 * (fixed["ci_high"] - fixed["ci_low"])
    assert early["sequential"]["fraction_of_plan"] == pytest.approx(0.1)


def test_a_planted_sample_ratio_mismatch_is_flagged() -> None:
    frame, _ = exposures(20_000, [0.46, 0.54], [0.0, 0.0], seed=3)
    out = analyze(frame, spec([0.5, 0.5]), started_at=START, now=START + timedelta(days=7))  # type: ignore[arg-type]
    assert out["srm"]["flagged"] and out["srm"]["p_value"] < 1e-6
    assert out["verdict"].startswith("sample ratio mismatch")


def test_more_than_two_variants_are_corrected_and_guardrails_checked() -> None:
    frame, _ = exposures(15_000, [0.34, 0.33, 0.33], [0.0, 0.0, 0.5], seed=4)
    frame.loc[frame["variant"] == "v1", "latency_ms"] += 400
    out = analyze(frame, spec([0.34, 0.33, 0.33]), started_at=START, now=START + timedelta(days=7))  # type: ignore[arg-type]
    assert out["correction"] == "holm p-values, bonferroni intervals"
    c1, c2 = out["comparisons"]["v1"]["conversion"], out["comparisons"]["v2"]["conversion"]
    assert c1["p_adjusted"] >= c1["p_value"] and c2["ci_level"] == pytest.approx(0.975)
    assert c2["significant"]
    assert (
        out["guardrails"]["variants"]["v1"]["breached"] == ["p99_latency_ms"] and not out["guardrails"]["ok"]
    )


def test_forced_qa_users_are_not_part_of_the_sample() -> None:
    frame, _ = exposures(2_000, [0.5, 0.5], [0.0, 0.0], seed=5)
    qa = pd.DataFrame([{**frame.iloc[0].to_dict(), "user_id": "qa-1", "variant": "v1"}] * 50)
    out = analyze(  # type: ignore[arg-type]
        pd.concat([frame, qa]), spec([0.5, 0.5], overrides={"qa-1": "v1"}), started_at=START, now=START
    )
    assert out["users"] == 2_000 and out["forced_users_excluded"] == 1
