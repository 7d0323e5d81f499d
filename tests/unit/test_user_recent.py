"""The user_recent view is one definition computed two ways: the stream's fold and the lake's vectorised
pass. On random logs (ties, repeats, sessions with gaps, every event type) cut into random micro-batches,
both must give the same rows, and a state read back from a row must fold on exactly as the original."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from aisle.core.schemas import EVENT_TYPES
from feature_repo.tables import USER_RECENT_SCHEMA
from feature_repo.user_recent import (
    Limits,
    RecentState,
    fold_batch,
    from_events,
    from_row,
    recent_interactions,
    to_table,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def random_log(seed: int, n: int = 400) -> pa.Table:
    rng = np.random.default_rng(seed)
    seconds = np.sort(rng.integers(0, n // 3, n))  # many exact ties
    sessions = np.array(["s1", "s2", "s3", None], dtype=object)
    return pa.table(
        {
            "event_id": [f"e{rng.integers(0, 10**9):09d}" for _ in range(n)],
            "event_type": rng.choice(np.array(EVENT_TYPES, dtype=object), n).tolist(),
            "user_id": rng.choice(np.array(["u1", "u2", "u3", "u4"], dtype=object), n).tolist(),
            "item_id": [f"i{k}" for k in rng.integers(0, 25, n)],
            "ts": pa.array([T0 + timedelta(seconds=int(s)) for s in seconds], pa.timestamp("us", tz="UTC")),
            "session_id": rng.choice(sessions, n, p=[0.4, 0.3, 0.2, 0.1]).tolist(),
        }
    )


def folded(log: pa.Table, cuts: list[int], limits: Limits) -> pa.Table:
    """The stream path: the log in (ts, event_id) order, cut into micro-batches, each folded in turn."""
    ordered = log.sort_by([("ts", "ascending"), ("event_id", "ascending")])
    states: dict[str, RecentState] = {}
    bounds = [0, *sorted(cuts), ordered.num_rows]
    for lo, hi in itertools.pairwise(bounds):
        batch = ordered.slice(lo, hi - lo)
        rng = np.random.default_rng(lo)
        shuffled = batch.take(rng.permutation(batch.num_rows))  # any order inside a micro-batch
        states.update(fold_batch(states, shuffled, limits))
    return to_table(dict(sorted(states.items())))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("limits", [Limits(), Limits(recent=3, seen=4, purchased=2)])
def test_fold_and_lake_pass_give_the_same_rows(seed: int, limits: Limits) -> None:
    log = random_log(seed)
    rng = np.random.default_rng(100 + seed)
    # cut between distinct instants: a shopper's event stamped like one already folded is a replay
    ts = log.sort_by("ts")["ts"].to_numpy()
    between = np.flatnonzero(ts[1:] != ts[:-1]) + 1
    cuts = rng.choice(between, size=int(rng.integers(0, 12)), replace=False).tolist()
    stream = folded(log, cuts, limits)
    lake = from_events(log, limits=limits)
    assert stream.schema.equals(USER_RECENT_SCHEMA) and lake.schema.equals(USER_RECENT_SCHEMA)
    assert stream.to_pylist() == lake.to_pylist()


def test_as_of_and_users_select_what_was_known() -> None:
    log = random_log(7)
    cut = T0 + timedelta(seconds=60)
    before = log.filter(pa.compute.less(log["ts"], pa.scalar(cut, pa.timestamp("us", tz="UTC"))))
    assert from_events(log, as_of=cut).to_pylist() == folded(before, [], Limits()).to_pylist()
    only = from_events(log, as_of=cut, users=["u2"]).to_pylist()
    assert [r["user_id"] for r in only] == ["u2"]
    assert from_events(log, as_of=T0).num_rows == 0  # nothing strictly before the first event


def test_replayed_batches_count_nothing_twice() -> None:
    log = random_log(5).sort_by([("ts", "ascending"), ("event_id", "ascending")])
    ts = log["ts"].to_numpy()
    cut = int(np.flatnonzero(ts[1:] != ts[:-1])[60]) + 1
    states = fold_batch({}, log.slice(0, cut))
    replayed = fold_batch(states, log.slice(0, cut))  # a crash re-delivers the batch
    assert replayed == {}
    states.update(fold_batch(states, log.slice(cut)))
    assert to_table(dict(sorted(states.items()))).to_pylist() == from_events(log).to_pylist()


def test_a_row_read_back_folds_on_like_the_state_it_came_from() -> None:
    log = random_log(3).sort_by([("ts", "ascending"), ("event_id", "ascending")])
    ts = log["ts"].to_numpy()
    cut = int(np.flatnonzero(ts[1:] != ts[:-1])[40]) + 1
    first, rest = log.slice(0, cut), log.slice(cut)
    states = fold_batch({}, first)
    restored = {u: from_row(row) for u, row in ((r["user_id"], r) for r in to_table(states).to_pylist())}
    assert all(restored[u] == states[u] for u in states)
    assert from_row({"last_event_us": None}) is None  # an unknown shopper online
    carried = {**states, **fold_batch(states, rest)}
    again = {**restored, **fold_batch({u: s for u, s in restored.items() if s}, rest)}
    assert to_table(dict(sorted(carried.items()))).equals(to_table(dict(sorted(again.items()))))


def test_contract_semantics_by_hand() -> None:
    rows = [  # user, type, item, second, session
        ("u", "view", "a", 0, "s1"),
        ("u", "view", "b", 1, "s1"),
        ("u", "add_to_cart", "a", 2, "s1"),  # a again: newest, now as a cart
        ("u", "remove_from_cart", "c", 3, None),  # not an interaction, but seen; no session: same one
        ("u", "purchase", "b", 4, "s2"),  # new session: counters restart
        ("u", "rating", "d", 5, "s2"),
    ]
    log = pa.table(
        {
            "event_id": [f"e{i}" for i in range(len(rows))],
            "user_id": [r[0] for r in rows],
            "event_type": [r[1] for r in rows],
            "item_id": [r[2] for r in rows],
            "ts": pa.array([T0 + timedelta(seconds=r[3]) for r in rows], pa.timestamp("us", tz="UTC")),
            "session_id": [r[4] for r in rows],
        }
    )
    (row,) = from_events(log).to_pylist()
    # a rating is an interaction (issue #11); a cart removal is not
    assert row["recent_items"] == ["d", "b", "a"]
    assert row["recent_types"] == ["rating", "purchase", "add_to_cart"]
    assert row["seen_items"] == ["d", "b", "c", "a"] and row["purchased_items"] == ["b"]
    totals = (row["events_total"], row["views_total"], row["carts_total"], row["purchases_total"])
    assert totals == (6, 2, 1, 1)
    assert (row["session_id"], row["session_events"], row["session_views"]) == ("s2", 2, 0)
    assert row["last_event_us"] == row["recent_ts_us"][0] == row["recent_ts_us"][1] + 1_000_000
    assert recent_interactions(log, 1)["item_id"].tolist() == ["d"]
