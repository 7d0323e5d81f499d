"""A sequential interval: look every day without inflating false positives.

Why not the usual fixed-horizon interval: checking it daily and stopping at the first "significant"
day raises the false-positive rate from 5% to about 20% over two weeks (the calibration test measures
it). Why not a mixture-SPRT ("anytime-valid") interval: it holds for infinitely many looks, and pays for
it; over two weeks of daily looks its false-positive rate is about 1% at a nominal 5%
(``bench/bench_experiments.py`` measures it), so it misses real effects a calibrated interval finds.

What this is: a group-sequential design with a Lan-DeMets error-spending function of the
O'Brien-Fleming type, α(t) = 2 - 2Φ(z_{1-α/2} / √t), where t is the share of the planned duration that
has passed. Each look spends α(t_k) - α(t_{k-1}) of the error budget, so any number of looks, at any
times chosen without peeking at the result, keeps the overall false-positive rate at α. Early looks get
wide intervals (little budget spent), the look at the planned end gets nearly the fixed-horizon one. The
critical values come from the exact joint law of the looks' z-statistics (correlation √(I_j/I_k) for
information I, here the number of shoppers), integrated numerically on a grid (Armitage, McPherson and
Rowe's recursion). Looks after the planned end re-use the final critical value: running past the plan
spends error the design did not budget, which the analysis reports.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import optimize, special
from scipy import stats as sps

#: Looks whose information differs by less than this share of the final one are one look.
MERGE_SHARE = 1e-3
_SPAN = 9.0  # grid half-width in standard deviations of the final look
_ROOT_2PI = math.sqrt(2 * math.pi)


def obf_spending(t: float, alpha: float) -> float:
    """Error spent by time fraction ``t`` (0 at the start, ``alpha`` at the planned end)."""
    if t <= 0:
        return 0.0
    if t >= 1:
        return alpha
    return float(2 - 2 * sps.norm.cdf(sps.norm.ppf(1 - alpha / 2) / math.sqrt(t)))


def critical_values(
    fractions: Sequence[float], information: Sequence[float], alpha: float = 0.05
) -> list[float]:
    """Two-sided critical z-values, one per look, for looks at time ``fractions`` with ``information``.

    ``fractions`` and ``information`` are non-decreasing; a look at or past the planned end (fraction
    ≥ 1) after an earlier such look gets the earlier one's value.
    """
    if len(fractions) != len(information):
        raise ValueError("one information value per look")
    if not fractions:
        return []
    running_max = np.maximum.accumulate(np.asarray(information, dtype=float))
    final = float(running_max[-1])
    if final <= 0:
        return [math.inf] * len(fractions)
    tau = [max(float(i) / final, 0.0) for i in running_max]
    steps = [b - a for a, b in zip([0.0, *tau[:-1]], tau, strict=True) if b - a > MERGE_SHARE]
    h = max(min(0.02, min(math.sqrt(s) for s in steps) / 10 if steps else 0.02), 0.004)
    values: list[float] = []
    grid = np.zeros(1)
    mass = np.ones(1)
    spent = 0.0
    tau_prev = 0.0
    c_final: float | None = None
    for t, ti in zip(fractions, tau, strict=True):
        if c_final is not None:  # past the planned end: the final boundary stays
            values.append(c_final)
            continue
        if ti - tau_prev <= MERGE_SHARE:  # the same data again (or none yet): the same boundary
            values.append(values[-1] if values else math.inf)
            continue
        target = obf_spending(min(t, 1.0), alpha) - spent
        delta = ti - tau_prev
        sd = math.sqrt(delta)
        root_t = math.sqrt(ti)

        if target <= 1e-12:
            c = math.inf
        else:
            args = (grid, mass, root_t, sd, target)
            c = float(optimize.brentq(_excess, 1e-9, 40.0, args=args, xtol=1e-10))
        spent += _crossing(c, grid, mass, root_t, sd) if math.isfinite(c) else 0.0
        values.append(c)
        limit = min(c * root_t, _SPAN * math.sqrt(ti)) if math.isfinite(c) else _SPAN * math.sqrt(ti)
        n = max(int(2 * limit / h) + 1, 3)
        new_grid = np.linspace(-limit, limit, n)
        weights = np.full(n, new_grid[1] - new_grid[0])
        weights[[0, -1]] /= 2  # trapezoid rule: the region ends at the boundary
        kernel = np.exp(-0.5 * ((new_grid[:, None] - grid[None, :]) / sd) ** 2) / (sd * _ROOT_2PI)
        mass = kernel @ mass * weights
        grid = new_grid
        tau_prev = ti
        if t >= 1:
            c_final = c
    return values


def _crossing(c: float, grid: np.ndarray, mass: np.ndarray, root_t: float, sd: float) -> float:
    """Probability of continuing to the previous look and crossing ±c at this one."""
    stay = special.ndtr((c * root_t - grid) / sd) - special.ndtr((-c * root_t - grid) / sd)
    return float(np.sum(mass * (1.0 - stay)))


def _excess(c: float, grid: np.ndarray, mass: np.ndarray, root_t: float, sd: float, target: float) -> float:
    return _crossing(c, grid, mass, root_t, sd) - target
