"""Calibration: does a 5% test call 5% of no-difference experiments significant, and find real effects?

Seeded, simulated shoppers with the same per-user shape the analysis reads (exposures, clicks, carts,
a purchase or not, revenue, and pre-experiment activity that predicts buying), run through the
analysis's own estimators, comparison, sequential critical values and CUPED. The tests bound the
number of runs; ``bench/bench_experiments.py`` runs more and records the rates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from monitoring.experiments import sequential as seq
from monitoring.experiments.analysis import Users
from monitoring.experiments.stats import Estimate, compare, cuped, mean_estimate, srm_test


@dataclass(frozen=True)
class Shoppers:
    """How simulated shoppers behave: base rates, and how strongly the past predicts buying."""

    conversion: float = 0.06
    ctr: float = 0.12
    cart_rate: float = 0.04
    mean_exposures: float = 2.5
    pre_period_signal: float = 1.0  # 0: past activity says nothing about buying now


def simulate(
    rng: np.random.Generator, n: int, shoppers: Shoppers, lift: float = 0.0
) -> tuple[Users, np.ndarray]:
    """``n`` shoppers of one arm (``lift``: relative change of their buying odds) and their past activity."""
    shape, signal = 0.7, shoppers.pre_period_signal
    activity = rng.gamma(shape, 1 / shape, n)  # heavy-tailed, mean 1
    past = rng.poisson(4 * activity)
    # E[activity ** signal] of the gamma law: the population's mean, not this sample's (which would
    # hide the between-sample variance the test must see)
    mean_tilt = math.exp(math.lgamma(shape + signal) - math.lgamma(shape)) / shape**signal
    p_buy = np.clip(shoppers.conversion * activity**signal / mean_tilt * (1 + lift), 0, 0.95)
    exposures = 1 + rng.poisson(shoppers.mean_exposures - 1, n)
    converted = (rng.random(n) < p_buy).astype(float)
    users = Users(
        variant=np.zeros(n, dtype=int),
        exposures=exposures.astype(float),
        clicked=rng.binomial(exposures, shoppers.ctr).astype(float),
        carted=rng.binomial(exposures, shoppers.cart_rate).astype(float),
        converted=converted,
        revenue=converted * rng.lognormal(3.5, 0.8, n),
    )
    return users, past.astype(float)


def _pair(
    rng: np.random.Generator, n: int, shoppers: Shoppers, lift: float
) -> tuple[Users, Users, np.ndarray, np.ndarray]:
    control, past_c = simulate(rng, n, shoppers)
    treated, past_t = simulate(rng, n, shoppers, lift)
    return control, treated, past_c, past_t


def _all(users: Users) -> np.ndarray:
    return np.ones(len(users.variant), dtype=bool)


def fixed_horizon(
    runs: int,
    users_per_arm: int,
    *,
    seed: int = 0,
    lift: float = 0.0,
    metric: str = "conversion",
    alpha: float = 0.05,
) -> float:
    """Share of runs whose fixed-horizon test is significant (the false-positive rate when lift = 0)."""
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(runs):
        control, treated, _, _ = _pair(rng, users_per_arm, Shoppers(), lift)
        r = compare(treated.metric(metric, _all(treated)), control.metric(metric, _all(control)), alpha)
        hits += bool(r.p_value < alpha)
    return hits / runs


def daily_peeking(
    runs: int, users_per_arm_per_day: int, days: int, *, seed: int = 0, lift: float = 0.0, alpha: float = 0.05
) -> dict[str, float]:
    """Look at conversion every day and stop at the first significant look.

    Returns the share of runs ever called significant by the fixed-horizon interval (what naive
    peeking does) and by the sequential interval (what the analysis offers for daily looks).
    """
    rng = np.random.default_rng(seed)
    fractions = [(d + 1) / days for d in range(days)]
    info = [float((d + 1) * users_per_arm_per_day * 2) for d in range(days)]
    criticals = seq.critical_values(fractions, info, alpha)
    naive = sequential = 0
    n = users_per_arm_per_day * days
    for _ in range(runs):
        control, treated, _, _ = _pair(rng, n, Shoppers(), lift)
        naive_hit = seq_hit = False
        looks = [(d + 1) * users_per_arm_per_day for d in range(days)]  # shoppers arrive in order
        for critical, t, c in zip(
            criticals, _prefix(treated.converted, looks), _prefix(control.converted, looks), strict=True
        ):
            r = compare(t, c, alpha)
            naive_hit |= bool(r.p_value < alpha)
            seq_hit |= r.rejects(critical)
        naive += naive_hit
        sequential += seq_hit
    return {"naive": naive / runs, "sequential": sequential / runs}


def _prefix(values: np.ndarray, sizes: list[int]) -> list[Estimate]:
    """``mean_estimate`` of every prefix at once (running sums; the same mean and variance)."""
    s1, s2 = np.cumsum(values), np.cumsum(values**2)
    out = []
    for n in sizes:
        total, squares = float(s1[n - 1]), float(s2[n - 1])
        out.append(Estimate(total / n, (squares - total * total / n) / (n - 1) / n, n))
    return out


def cuped_narrowing(users_per_arm: int, *, seed: int = 0, signal: float = 1.0) -> dict[str, Any]:
    """Interval width of the conversion lift with and without CUPED on the same shoppers."""
    rng = np.random.default_rng(seed)
    shoppers = Shoppers(pre_period_signal=signal)
    control, treated, past_c, past_t = _pair(rng, users_per_arm, shoppers, 0.0)
    plain = compare(mean_estimate(treated.converted), mean_estimate(control.converted))
    adjusted = cuped([control.converted, treated.converted], [past_c, past_t])
    reduced = compare(mean_estimate(adjusted.adjusted[1]), mean_estimate(adjusted.adjusted[0]))
    return {
        "plain_width": plain.ci[1] - plain.ci[0],
        "cuped_width": reduced.ci[1] - reduced.ci[0],
        "variance_reduction": adjusted.variance_reduction,
        "theta": adjusted.theta,
    }


def srm_flag_rate(runs: int, users: int, treated_share: float, *, seed: int = 0) -> float:
    """Share of runs whose sample-ratio test fires when the true split is ``treated_share`` (50/50 set)."""
    rng = np.random.default_rng(seed)
    flagged = 0
    for _ in range(runs):
        treated = int(rng.binomial(users, treated_share))
        flagged += bool(srm_test([users - treated, treated], [0.5, 0.5])["flagged"])
    return flagged / runs
