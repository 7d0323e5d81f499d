"""The statistics of an A/B comparison, written once and used by the analysis, the report and the tests.

The unit of randomisation is the shopper, so every estimate is built from per-shopper sums; a shopper's
exposures are not independent draws. Two kinds of metric:

* **per-user means** (conversion, revenue per user): the mean of one value per shopper;
* **ratios** (CTR, add-to-cart rate = events per exposure): a sum over shoppers divided by another sum,
  with its variance by the delta method on the per-shopper sums (a naive per-exposure variance would
  be too small and call too many winners).

A comparison reports the relative lift of a variant over the control with Fieller's interval and the
two-sided p-value of the difference (Welch z), which agree: the interval excludes 0 exactly when
p < alpha.
With more than two variants the p-values are Holm-adjusted and the intervals Bonferroni-widened.
CUPED subtracts the part of each shopper's outcome that their pre-experiment activity predicts; the
estimate stays unbiased (the covariate is fixed before assignment) and its variance shrinks by the
squared correlation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

#: Sample-ratio mismatch is flagged below this p-value: strict, because a false alarm stops a good test.
SRM_ALPHA = 0.001


@dataclass(frozen=True)
class Estimate:
    """A metric's value in one variant and the variance of that value (not of one shopper)."""

    value: float
    variance: float
    users: int

    @property
    def se(self) -> float:
        return math.sqrt(max(self.variance, 0.0))


def mean_estimate(per_user: np.ndarray) -> Estimate:
    n = len(per_user)
    if n == 0:
        return Estimate(math.nan, math.nan, 0)
    var = float(np.var(per_user, ddof=1)) / n if n > 1 else math.nan
    return Estimate(float(np.mean(per_user)), var, n)


def ratio_estimate(numerator: np.ndarray, denominator: np.ndarray) -> Estimate:
    """sum(num)/sum(den) over shoppers, delta-method variance: Var(num - R·den) / (n · mean(den)²)."""
    n = len(numerator)
    den_total = float(np.sum(denominator))
    if n == 0 or den_total == 0:
        return Estimate(math.nan, math.nan, n)
    ratio = float(np.sum(numerator)) / den_total
    if n < 2:
        return Estimate(ratio, math.nan, n)
    residual = numerator - ratio * denominator
    mean_den = den_total / n
    return Estimate(ratio, float(np.var(residual, ddof=1)) / (n * mean_den**2), n)


@dataclass(frozen=True)
class Comparison:
    """A variant against the control: difference, relative lift, its interval, the p-value."""

    treatment: Estimate
    control: Estimate
    difference: float
    z: float  # the difference over its standard error (Welch)
    lift: float
    lift_se: float  # delta method; for plots and power, the interval itself is Fieller's
    ci: tuple[float, float]
    p_value: float
    level: float

    def interval(self, critical: float) -> tuple[float, float]:
        """The lift's interval at another critical value (e.g. the sequential one)."""
        return fieller(self.treatment, self.control, critical)

    def rejects(self, critical: float) -> bool:
        return math.isfinite(self.z) and abs(self.z) >= critical

    def to_dict(self) -> dict[str, Any]:
        return {
            "difference": _clean(self.difference),
            "lift": _clean(self.lift),
            "ci_low": _clean(self.ci[0]),
            "ci_high": _clean(self.ci[1]),
            "p_value": _clean(self.p_value),
            "ci_level": self.level,
        }


def _clean(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


def lift_se(treatment: Estimate, control: Estimate) -> float:
    """Delta-method standard error of treatment/control - 1 (independent groups)."""
    mt, mc = treatment.value, control.value
    if not mc or not math.isfinite(mc):
        return math.nan
    return math.sqrt(max(treatment.variance / mc**2 + mt**2 * control.variance / mc**4, 0.0))


def fieller(treatment: Estimate, control: Estimate, critical: float) -> tuple[float, float]:
    """Fieller's interval for treatment/control - 1: every ratio ρ with |t - ρc| ≤ critical·√(vt + ρ²vc).

    It excludes 0 exactly when the difference's z-test rejects at ``critical``, which a symmetric
    delta-method interval does not guarantee. Unbounded (NaN) while the control's mean is not yet
    distinguishable from zero.
    """
    mt, mc, vt, vc = treatment.value, control.value, treatment.variance, control.variance
    if not all(math.isfinite(x) for x in (mt, mc, vt, vc, critical)):
        return (math.nan, math.nan)
    z2 = critical * critical
    a = mc * mc - z2 * vc
    b = mt * mc
    disc = b * b - a * (mt * mt - z2 * vt)
    if a <= 0 or disc < 0:
        return (math.nan, math.nan)
    root = math.sqrt(disc)
    return ((b - root) / a - 1, (b + root) / a - 1)


def compare(treatment: Estimate, control: Estimate, alpha: float = 0.05) -> Comparison:
    """Two-sided Welch z-test of the difference; Fieller interval of the relative lift at the same level."""
    diff = treatment.value - control.value
    se_diff = (
        math.sqrt(treatment.variance + control.variance)
        if treatment.users > 1 and control.users > 1
        else math.nan
    )
    lift = treatment.value / control.value - 1 if control.value else math.nan
    critical = float(sps.norm.ppf(1 - alpha / 2))
    if not math.isfinite(se_diff) or se_diff == 0:
        z = math.nan
        p = 1.0 if diff == 0 else math.nan
    else:
        z = diff / se_diff
        p = float(2 * sps.norm.sf(abs(z)))
    ci = fieller(treatment, control, critical)
    return Comparison(treatment, control, diff, z, lift, lift_se(treatment, control), ci, p, 1 - alpha)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment (controls the family-wise error; never less powerful than Bonferroni)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: (math.isnan(p_values[i]), p_values[i]))
    adjusted = [math.nan] * m
    running = 0.0
    for rank, i in enumerate(order):
        p = p_values[i]
        if math.isnan(p):
            continue
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def srm_test(observed: Sequence[int], weights: Sequence[float]) -> dict[str, Any]:
    """Chi-square test of the users per variant against the configured weights."""
    obs = np.asarray(observed, dtype=float)
    total = obs.sum()
    if total == 0:
        return {"p_value": None, "flagged": False, "observed": list(map(int, obs)), "expected": None}
    expected = np.asarray(weights, dtype=float) / float(np.sum(weights)) * total
    chi2 = float(((obs - expected) ** 2 / expected).sum())
    p = float(sps.chi2.sf(chi2, df=len(obs) - 1))
    return {
        "chi2": round(chi2, 4),
        "p_value": p,
        "flagged": p < SRM_ALPHA,
        "threshold": SRM_ALPHA,
        "observed": [int(x) for x in obs],
        "expected": [round(float(x), 1) for x in expected],
    }


@dataclass(frozen=True)
class Cuped:
    theta: float
    adjusted: list[np.ndarray]  # per variant, same order as given
    variance_reduction: float


def cuped(outcomes: Sequence[np.ndarray], covariates: Sequence[np.ndarray]) -> Cuped:
    """Y - θ(X - mean X) with θ = Cov(X, Y)/Var(X) pooled over all variants (one θ keeps it unbiased)."""
    y = np.concatenate(list(outcomes))
    x = np.concatenate(list(covariates)).astype(float)
    var_x = float(np.var(x, ddof=1)) if len(x) > 1 else 0.0
    if var_x == 0:
        return Cuped(0.0, [np.asarray(o, dtype=float) for o in outcomes], 0.0)
    theta = float(np.cov(x, y, ddof=1)[0, 1]) / var_x
    mean_x = float(np.mean(x))
    adjusted = [
        np.asarray(o, dtype=float) - theta * (c - mean_x) for o, c in zip(outcomes, covariates, strict=True)
    ]
    var_y = float(np.var(y, ddof=1))
    reduced = float(np.var(np.concatenate(adjusted), ddof=1))
    return Cuped(theta, adjusted, 1 - reduced / var_y if var_y > 0 else 0.0)


def quantile(values: np.ndarray, q: float) -> float | None:
    return float(np.quantile(values, q)) if len(values) else None
