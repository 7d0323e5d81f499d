from datetime import UTC, datetime, timedelta

import pyarrow as pa

from feature_repo.tables import USER_RECENT_SCHEMA
from feature_repo.user_recent import Limits, RecentState, fold_batch, fold_event, to_table

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def events(rows: list[tuple[str, str, str, int, str | None]]) -> pa.Table:
    return pa.table(
        {
            "user_id": [r[0] for r in rows],
            "event_type": [r[1] for r in rows],
            "item_id": [r[2] for r in rows],
            "ts": pa.array([T0 + timedelta(seconds=r[3]) for r in rows], pa.timestamp("us", tz="UTC")),
            "session_id": [r[4] for r in rows],
        }
    )


def test_recent_items_newest_first_without_duplicates_and_capped() -> None:
    state = None
    for i, item in enumerate(["a", "b", "c", "a", "d"]):
        state = fold_event(state, "view", item, T0 + timedelta(seconds=i), "s1", Limits(recent=3))
    assert state is not None
    assert [e[0] for e in state.recent] == ["d", "a", "c"]
    assert state.session_views == 5 and state.session_events == 5


def test_purchase_is_kept_and_new_session_resets_counters() -> None:
    s = fold_event(None, "add_to_cart", "x", T0, "s1")
    s = fold_event(s, "add_to_cart", "y", T0 + timedelta(seconds=1), "s1")
    s = fold_event(s, "purchase", "x", T0 + timedelta(seconds=2), "s1")
    assert s.purchased_items == ("x",) and s.session_carts == 2
    s = fold_event(s, "view", "z", T0 + timedelta(seconds=3), "s2")
    assert (s.session_id, s.session_events, s.session_views, s.session_carts) == ("s2", 1, 1, 0)
    assert s.purchased_items == ("x",) and s.carts_total == 2  # lifetime counters outlive the session


def test_late_event_does_not_rewind_state() -> None:
    s = fold_event(None, "view", "new", T0 + timedelta(seconds=10), "s1")
    assert fold_event(s, "view", "old", T0, "s1") is s


def test_batch_in_any_order_folds_by_time_and_reports_only_changed_users() -> None:
    batch = events([("u1", "view", "b", 2, "s"), ("u2", "view", "q", 1, "t"), ("u1", "view", "a", 1, "s")])
    prior = {"u3": RecentState(event_timestamp=T0, recent=(("z", "view", 0),))}
    changed = fold_batch(prior, batch)
    assert set(changed) == {"u1", "u2"}
    assert [e[0] for e in changed["u1"].recent] == ["b", "a"]
    assert changed["u1"].event_timestamp == T0 + timedelta(seconds=2)
    table = to_table(changed)
    assert table.schema.equals(USER_RECENT_SCHEMA)
    assert table.num_rows == 2
