"""Session-kNN: shoppers whose recent items resemble past sessions get what those sessions went on to.

A query is a shopper's recent items (the shopper-context contract's list, newest first, weighted so the
newest counts most); neighbours are the past sessions sharing the most items with it (cosine over the
session × item incidence), and an item's score is the summed similarity of the neighbours holding it.
Sessions are the events' ``session_id`` where the log has one, else a shopper's events split at gaps of
``gap_hours`` (a ratings log has no session ids). Only the newest ``max_sessions`` sessions are kept as
neighbours, as session-kNN implementations do, which also keeps the model current.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from feature_repo.user_recent import recent_interactions
from models.baselines._base import ScoringRecommender
from models.baselines.item_knn import _keep_top_per_row


def session_keys(events: pd.DataFrame, gap_hours: float) -> np.ndarray:
    """One key per event: its session id, or (for events without one) the shopper + a gap-split run."""
    ts = pd.to_datetime(events["ts"], utc=True)
    order = np.lexsort((ts.to_numpy(), events["user_id"].astype(str).to_numpy()))
    users = events["user_id"].astype(str).to_numpy()[order]
    times = ts.to_numpy()[order]
    new_user = np.r_[True, users[1:] != users[:-1]]
    gap = np.r_[True, np.diff(times) > np.timedelta64(int(gap_hours * 3600), "s")]
    runs = np.cumsum(new_user | gap)
    derived = np.empty(len(events), dtype=object)
    derived[order] = [f"{u}#{r}" for u, r in zip(users, runs, strict=True)]
    if "session_id" in events.columns:
        given = events["session_id"].to_numpy(dtype=object)
        has = pd.notna(given)
        derived[has] = given[has]
    return derived


class SessionKNNRecommender(ScoringRecommender):
    def __init__(
        self, neighbours: int = 100, recent: int = 10, gap_hours: float = 1.0, max_sessions: int = 50_000
    ):
        if neighbours < 1 or recent < 1 or max_sessions < 1:
            raise ValueError("neighbours, recent and max_sessions must be at least 1")
        self.neighbours = neighbours
        self.recent = recent
        self.gap_hours = gap_hours
        self.max_sessions = max_sessions

    def _fit(self, train: pd.DataFrame, rows: np.ndarray, cols: np.ndarray, weights: np.ndarray) -> None:
        keys = session_keys(train, self.gap_hours)
        last_seen = pd.Series(pd.to_datetime(train["ts"], utc=True).to_numpy()).groupby(keys).max()
        kept = last_seen.sort_values(ascending=False).index[: self.max_sessions]
        session_index = pd.Index(kept)
        s_rows = session_index.get_indexer(keys)
        mask = s_rows >= 0
        incidence = sp.csr_matrix(
            (np.ones(int(mask.sum())), (s_rows[mask], cols[mask])),
            shape=(len(session_index), len(self.item_ids_)),
        )
        incidence.data[:] = 1.0
        incidence.sum_duplicates()
        incidence.data[:] = 1.0
        norms = np.sqrt(np.asarray(incidence.sum(axis=1)).ravel())
        self.sessions_ = sp.csr_matrix(
            sp.diags(np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)) @ incidence
        )
        self.incidence_ = incidence
        # each known shopper's query: their newest distinct items, the newest weighted most
        recent = recent_interactions(train, self.recent)
        positions = recent.groupby("user_id", sort=False).cumcount().to_numpy()
        q_rows = self._user_index.get_indexer(recent["user_id"].astype(str))
        q_cols = self._item_index.get_indexer(recent["item_id"].astype(str))
        keep = (q_rows >= 0) & (q_cols >= 0)
        decay = 1.0 - positions[keep] / float(self.recent)
        self.queries_ = sp.csr_matrix(
            (decay, (q_rows[keep], q_cols[keep])), shape=(len(self._user_index), len(self.item_ids_))
        )

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        def personal(rows: np.ndarray) -> np.ndarray:
            sim = _keep_top_per_row((self.queries_[rows] @ self.sessions_.T).tocsr(), self.neighbours)
            return (sim @ self.incidence_).toarray()

        return self._over_popularity(user_rows, personal)
