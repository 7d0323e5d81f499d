"""``neighbour_ranks`` (a ranker feature computed per request) against its definition, pair by pair."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from models.policy_signals import neighbour_ranks


@pytest.mark.parametrize("seed", range(5))
def test_neighbour_ranks_follow_their_definition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_items = 60
    ids = np.asarray([f"i{k:03d}" for k in range(n_items)], dtype=object)
    dense = (rng.random((n_items, n_items)) < 0.08) * rng.random((n_items, n_items))
    linked = (sp.csr_matrix(dense) > 0).astype(np.float64).tocsr()
    recent = [
        [
            str(ids[j]) if rng.random() > 0.1 else "unknown"
            for j in rng.choice(n_items, rng.integers(0, 12), False)
        ]
        for _ in range(7)
    ]
    rows = np.repeat(np.arange(len(recent)), 25)
    candidates = rng.integers(-1, n_items, len(rows))
    got = neighbour_ranks(recent, pd.Index(ids), linked, rows, candidates)
    position = {str(i): k for k, i in enumerate(ids)}
    for n, (r, c) in enumerate(zip(rows.tolist(), candidates.tolist(), strict=True)):
        want = 0.0
        if c >= 0:  # the newest recent item linked to the candidate
            for p, item in enumerate(recent[r]):
                if item in position and dense[position[item], c] > 0:
                    want = 1.0 / (1.0 + p)
                    break
        assert got[n] == want, (r, c)
