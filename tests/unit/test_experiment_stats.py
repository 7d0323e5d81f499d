"""Calibration of the A/B statistics on seeded simulated shoppers (bounded runs, a few seconds).

At the 5% level an A/A comparison must come out significant in 2-8% of runs, for the fixed-horizon test
and for daily peeking with the sequential interval; naive daily peeking with the fixed interval must not
(it is the failure the sequential interval exists for). A planted lift is found, a planted sample-ratio
mismatch is flagged, CUPED narrows the interval when the past predicts the present.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from monitoring.experiments import calibration as cal
from monitoring.experiments.sequential import critical_values, obf_spending
from monitoring.experiments.stats import Estimate, compare, holm, ratio_estimate, srm_test


@pytest.mark.parametrize("metric", ["conversion", "ctr", "revenue_per_user"])
def test_aa_fixed_horizon_false_positive_rate_is_calibrated(metric: str) -> None:
    rate = cal.fixed_horizon(800, 1500, seed=11, metric=metric)
    assert 0.02 <= rate <= 0.08, rate


def test_aa_daily_peeking_with_the_sequential_interval_is_calibrated() -> None:
    rates = cal.daily_peeking(800, 120, 14, seed=12)
    assert 0.02 <= rates["sequential"] <= 0.08, rates
    assert rates["naive"] > 0.12, rates  # what the sequential interval protects against


def test_a_planted_lift_is_detected() -> None:
    assert cal.fixed_horizon(60, 6000, seed=13, lift=0.3) >= 0.85
    assert cal.daily_peeking(60, 500, 14, seed=14, lift=0.3)["sequential"] >= 0.8


def test_a_planted_sample_ratio_mismatch_is_flagged_and_a_fair_split_is_not() -> None:
    assert cal.srm_flag_rate(100, 20_000, 0.53, seed=15) >= 0.95
    assert cal.srm_flag_rate(400, 20_000, 0.50, seed=16) <= 0.01


def test_cuped_narrows_the_interval_on_data_with_pre_period_signal() -> None:
    with_signal = cal.cuped_narrowing(8000, seed=17, signal=2.0)
    assert with_signal["cuped_width"] < with_signal["plain_width"] * 0.97, with_signal
    assert with_signal["theta"] > 0
    without = cal.cuped_narrowing(8000, seed=18, signal=0.0)
    assert without["variance_reduction"] < 0.01  # no signal, (almost) no change


def test_sequential_critical_values_are_exact() -> None:
    assert critical_values([1.0], [1.0]) == pytest.approx([sps.norm.ppf(0.975)])
    c1, c2 = critical_values([0.5, 1.0], [0.5, 1.0])
    assert c1 == pytest.approx(sps.norm.ppf(1 - obf_spending(0.5, 0.05) / 2), rel=1e-6)
    r = math.sqrt(0.5)
    mvn = sps.multivariate_normal([0, 0], [[1, r], [r, 1]])
    inside = mvn.cdf([c1, c2]) - mvn.cdf([-c1, c2]) - mvn.cdf([c1, -c2]) + mvn.cdf([-c1, -c2])
    assert 1 - inside == pytest.approx(0.05, abs=5e-4)
    many = critical_values([k / 14 for k in range(1, 15)], list(range(1, 15)))
    assert many[0] == math.inf and all(a > b for a, b in itertools.pairwise(many[1:]))
    assert (
        critical_values([0.5, 1.0, 1.3], [5, 10, 14])[2] == critical_values([0.5, 1.0, 1.3], [5, 10, 14])[1]
    )


def test_ratio_metric_variance_matches_a_bootstrap() -> None:
    rng = np.random.default_rng(3)
    den = 1 + rng.poisson(3, 4000).astype(float)
    num = rng.binomial(den.astype(int), 0.1).astype(float)
    est = ratio_estimate(num, den)
    boots = [ratio_estimate(num[i], den[i]).value for i in (rng.integers(0, 4000, 4000) for _ in range(400))]
    assert est.se == pytest.approx(float(np.std(boots)), rel=0.15)


def test_holm_and_interval_agree_with_the_p_value() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    r = compare(Estimate(0.11, 0.0001, 1000), Estimate(0.10, 0.0001, 1000))
    assert (r.p_value < 0.05) == (r.ci[0] > 0 or r.ci[1] < 0)
    assert srm_test([5000, 5000], [0.5, 0.5])["flagged"] is False
