"""How large a drift distance the current window would show if nothing had changed: the noise floor.

A distance is not a test: between two samples of one distribution it is not zero, and on small windows
it is large (measured on the demo shop's feature snapshots, ~320 rows per day: the normed Wasserstein
distance between two samples of the *same* week reached 0.11–0.14, above the default threshold of 0.1;
on a column with 22 values, 0.45). Rows are not independent either: every event of a session carries
the session's depth, a heavy shopper fills a day with similar rows, weekdays differ. So the floor is the
larger of

* the sampling floor: the 99th percentile of the distance between two bootstrap samples of the
  reference drawn at the two windows' sizes, and
* the day-to-day floor: how far a normal slice of the reference, as long as the current window, lies
  from the rest of it (mean + 3 standard deviations over the slices; needs three slices or more),

and each column's threshold is ``max(configured, floor)``. Large, steady windows keep the configured
threshold; small or lumpy ones stop crying wolf. The distances are Evidently's: Wasserstein normed by
the reference's standard deviation, Jensen-Shannon between category frequencies.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

DRAWS = 50
QUANTILE = 0.99
#: Bootstrap samples are drawn at most this large; the floor is scaled to the true sizes (∝ 1/√n).
CAP = 5_000


def _effective(n_current: int, n_reference: int) -> float:
    return n_current * n_reference / (n_current + n_reference)


def distance(reference: pd.Series, current: pd.Series, categorical: bool) -> float:
    """Evidently's distance between two samples (Jensen-Shannon or normed Wasserstein)."""
    if categorical:
        ref = reference.astype(str).value_counts(normalize=True)
        cur = current.astype(str).value_counts(normalize=True)
        index = ref.index.union(cur.index)
        return float(jensenshannon(ref.reindex(index, fill_value=0.0), cur.reindex(index, fill_value=0.0)))
    x = reference.to_numpy(dtype=float)
    return float(wasserstein_distance(x, current.to_numpy(dtype=float)) / max(float(np.std(x)), 0.001))


def slice_floor(reference: pd.Series, slices: pd.Series, categorical: bool, min_values: int) -> float:
    """Mean + 3 sd of each slice's distance from the rest of the reference (0 with under three slices)."""
    values = reference.dropna()
    keys = slices.loc[values.index]
    distances = []
    for key in keys.unique():
        inside = (keys == key).to_numpy()
        if inside.sum() >= min_values and (~inside).sum() >= min_values:
            distances.append(distance(values[~inside], values[inside], categorical))
    if len(distances) < 3:
        return 0.0
    return float(np.mean(distances) + 3.0 * np.std(distances))


def sampling_floor(reference: pd.Series, n_current: int, categorical: bool, seed: int = 0) -> float:
    """The distance that chance alone exceeds in 1% of draws, for windows of these sizes."""
    values = reference.dropna()
    n_ref = len(values)
    if n_ref < 2 or n_current < 1:
        return math.inf
    rng = np.random.default_rng(seed)
    n_c, n_r = min(n_current, CAP), min(n_ref, CAP)
    distances = np.empty(DRAWS)
    if categorical:
        p = values.astype(str).value_counts(normalize=True).to_numpy()
        for i in range(DRAWS):
            a = rng.multinomial(n_c, p) / n_c
            b = rng.multinomial(n_r, p) / n_r
            distances[i] = jensenshannon(a, b)
    else:
        x = values.to_numpy(dtype=float)
        spread = max(float(np.std(x)), 0.001)
        for i in range(DRAWS):
            distances[i] = wasserstein_distance(rng.choice(x, n_c), rng.choice(x, n_r)) / spread
    scale = math.sqrt(_effective(n_c, n_r) / _effective(n_current, n_ref))
    return float(np.nan_to_num(np.quantile(distances, QUANTILE))) * scale
