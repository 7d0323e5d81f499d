"""Bought-together / viewed-together: items that share sessions with what the user touched recently.

Sessions, not users, define "together": a session is one shopping intent, so co-occurrence inside it
is the phone → case signal, while whole-user histories mix unrelated intents.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from models.baselines._base import ScoringRecommender


class CooccurrenceRecommender(ScoringRecommender):
    """Score(j) = sum over the user's ``recent`` latest items i of P(j | i in the same session).

    A pair's strength is the product of the two items' strongest event weights in the session, so
    items bought together count far more than items merely viewed together. Each anchor row is
    normalised to sum to one so a popular anchor does not drown the others. Users without history (or
    with no co-occurring items) get the popularity ranking.
    """

    def __init__(self, recent: int = 20):
        if recent < 1:
            raise ValueError(f"recent must be at least 1 (got {recent})")
        self.recent = recent

    def _fit(self, train: pd.DataFrame, rows: np.ndarray, cols: np.ndarray, weights: np.ndarray) -> None:
        n_items = len(self.item_ids_)
        sessions = train["session_id"].astype("string")
        # Events without a session fall back to the user's day, the closest proxy for one visit.
        day_key = train["user_id"].astype(str) + "|" + pd.to_datetime(train["ts"], utc=True).dt.strftime("%F")
        sessions = sessions.fillna(day_key.astype("string"))
        s_codes, s_uniques = pd.factorize(sessions)
        frame = pd.DataFrame({"s": s_codes, "i": cols, "w": weights})
        strongest = frame.groupby(["s", "i"], sort=False)["w"].max().reset_index()
        basket = sp.csr_matrix(
            (strongest["w"].to_numpy(), (strongest["s"].to_numpy(), strongest["i"].to_numpy())),
            shape=(len(s_uniques), n_items),
        )
        co = (basket.T @ basket).tocsr()
        co.setdiag(0.0)
        co.eliminate_zeros()
        row_sums = np.asarray(co.sum(axis=1)).ravel()
        inv = np.divide(1.0, row_sums, out=np.zeros_like(row_sums), where=row_sums > 0)
        self.cooccurrence_ = sp.csr_matrix(sp.diags(inv) @ co)
        # The user's anchors: the latest ``recent`` distinct items, in time order.
        order = pd.DataFrame({"u": rows, "i": cols, "ts": pd.to_datetime(train["ts"], utc=True).to_numpy()})
        latest = order.sort_values("ts").drop_duplicates(["u", "i"], keep="last")
        latest = latest.groupby("u", sort=False).tail(self.recent)
        self.anchors_ = sp.csr_matrix(
            (np.ones(len(latest)), (latest["u"].to_numpy(), latest["i"].to_numpy())),
            shape=(len(self._user_index), n_items),
        )

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        return self._item_to_item_scores(user_rows, self.anchors_, self.cooccurrence_)
