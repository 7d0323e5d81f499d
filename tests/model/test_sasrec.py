"""SASRec on a planted order: shoppers walk item chains (i3 → i4 → i5 ...), so only a model that reads
the order of the recent items knows what comes next; the exported artifact answers the same."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from feature_repo.user_recent import recent_interactions
from models.baselines import PopularityRecommender
from models.evaluation import Split, paired_bootstrap_ci, per_user_results
from models.sasrec.export import SASRecArtifact, export
from models.sasrec.model import SASRecConfig
from models.sasrec.numpy_encoder import numpy_sasrec
from models.sasrec.train import SASRecRecommender, sequence_recommend, tokenize, training_windows

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def chains(users: int = 400, items: int = 40, length: int = 8, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(users):
        start = int(rng.integers(0, items))
        begin = T0 + pd.Timedelta(hours=float(rng.uniform(0, 24 * 20)))
        for step in range(length):
            rows.append((f"u{u}", f"i{(start + step) % items}", begin + pd.Timedelta(minutes=5 * step)))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "ts"])
    frame["event_type"] = "view"
    frame["event_id"] = [f"e{i}" for i in range(len(frame))]
    return frame


def test_windows_and_tokens_are_left_padded_oldest_first() -> None:
    events = chains(users=1, items=10, length=4)  # i_s, i_s+1, i_s+2, i_s+3
    index = pd.Index(sorted(events["item_id"].unique()))
    inputs, targets = training_windows(events, index, max_len=5)
    assert inputs.shape == (1, 5) and inputs[0, :2].tolist() == [0, 0]
    assert (targets[0, 2:-1] == inputs[0, 3:]).all()  # each position's target is the next input
    tokens = tokenize([["b", "a"], [], ["zz"]], pd.Index(["a", "b"]), max_len=3)
    assert tokens.tolist() == [[0, 2, 3], [0, 0, 0], [0, 0, 1]]  # a→2, b→3, unknown→1, newest last


@pytest.mark.slow
def test_sasrec_learns_the_order_and_its_artifact_answers_the_same(tmp_path: Path) -> None:
    events = chains()
    last = events["ts"] == events.groupby("user_id")["ts"].transform("max")
    train, test = events.loc[~last].reset_index(drop=True), events.loc[last].reset_index(drop=True)
    users = np.sort(test["user_id"].unique())
    # a per-shopper split: train on all but each shopper's last step, test on that step
    split = Split(
        train=train,
        test=test,
        cutoff=T0,
        relevance=test[["user_id", "item_id"]].assign(grade=1),
        users=users,
        with_history=users,
        without_history=np.array([], dtype=object),
    )
    model = SASRecRecommender(SASRecConfig(max_len=10, dim=32, blocks=1, epochs=12, seed=1)).fit(train)
    frames = per_user_results(
        {"sasrec": model, "popularity": PopularityRecommender().fit(train)}, split, k_values=[10]
    )
    ours, theirs = frames["sasrec"]["ndcg@10"].to_numpy(), frames["popularity"]["ndcg@10"].to_numpy()
    lo, _ = paired_bootstrap_ci(ours, theirs)
    assert lo > 0.2 and ours.mean() > 0.5, (ours.mean(), theirs.mean())
    export(model, tmp_path)
    loaded = SASRecArtifact.load(tmp_path)
    queries = recent_interactions(train, 10)
    users = [str(u) for u in split.users[:50]]
    assert sequence_recommend(model, queries, users, 10) == sequence_recommend(loaded, queries, users, 10)
    np.testing.assert_allclose(model.states([["i3", "i2"]]), loaded.states([["i3", "i2"]]), atol=1e-5)
    copy = numpy_sasrec(loaded)  # what serving runs per request, checked against the signature
    assert copy is not None
    lists = [["i3", "i2"], [], ["nope", "i7"], [f"i{i % 40}" for i in range(25)]]
    np.testing.assert_allclose(copy.states(lists), loaded.states(lists), rtol=0, atol=1e-5)
