"""The ``user_recent`` view: what a shopper just did, defined once and computed two ways.

A row holds, for one shopper and everything they did before some instant (``tables.USER_RECENT_SCHEMA``):

* ``recent_items`` / ``recent_types`` / ``recent_ts_us``: the distinct items of their interactions
  (``aisle.core.schemas.INTERACTION_TYPES``: the graded types and ratings), newest first, at most
  ``RECENT_ITEMS``; for each item the type and time (µs since the epoch, UTC) of its latest interaction.
* ``seen_items``: the distinct items of *any* event, newest first, at most ``SEEN_ITEMS``;
  ``purchased_items``: the distinct items bought, newest first, at most ``PURCHASED_ITEMS``.
* ``events_total`` / ``views_total`` (view, click) / ``carts_total`` / ``purchases_total``: counts over
  all their events.
* ``session_id``: the last session id seen; ``session_events`` / ``session_views`` / ``session_carts``
  count the events since the session id last changed (events without a session id count in the
  current one).
* ``last_event_us``: the time of the newest event, equal to the row's ``event_timestamp`` (a feature as
  well, because Feast returns row timestamps online only to the second).

"Newest" means the order of ``(ts, event_id)``; a list keeps an item once, at its latest event.

Two ways to compute it, which must agree (``tests/unit/test_user_recent.py`` checks that on random
event logs cut into random micro-batches):

* :func:`fold_event` / :func:`fold_batch`: a pure fold, state + events → state, which the stream consumer
  runs per micro-batch before pushing the changed rows online;
* :func:`from_events`: vectorised over an event log, which the feature build runs over the lake (the
  offline copy that materialization loads into Redis) and the models run for training and batch scoring.

Online and offline agree when each shopper's events reach the stream in time order. The fold skips an
event that is not newer than what it already holds for that shopper from an earlier micro-batch: that is
how a replay after a crash is told apart (its rows may already be online), and it also drops a late event
the lake keeps, and the second of two events of one shopper stamped with the very same microsecond when
they arrive in different micro-batches. These are documented limits, not silent differences.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa

from aisle.core.schemas import INTERACTION_TYPES as INTERACTIONS
from feature_repo.tables import PURCHASED_ITEMS, RECENT_ITEMS, SEEN_ITEMS, USER_RECENT_SCHEMA

#: Event types that put an item on the recent list (the graded interactions and ratings).
INTERACTION_TYPES: Final = frozenset(INTERACTIONS)
VIEW_TYPES: Final = frozenset({"view", "click"})
CART_TYPE: Final = "add_to_cart"
PURCHASE_TYPE: Final = "purchase"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Limits:
    """List bounds; the defaults are the contract's, smaller ones only make tests readable."""

    recent: int = RECENT_ITEMS
    seen: int = SEEN_ITEMS
    purchased: int = PURCHASED_ITEMS


LIMITS: Final = Limits()


def to_us(ts: datetime) -> int:
    """A UTC datetime as integer microseconds since the epoch (exact, unlike float seconds)."""
    delta = ts - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> datetime:
    return datetime.fromtimestamp(us // 1_000_000, tz=UTC).replace(microsecond=us % 1_000_000)


@dataclass(frozen=True)
class RecentState:
    """One shopper's row of the view, as the fold carries it."""

    event_timestamp: datetime
    recent: tuple[tuple[str, str, int], ...] = ()  # (item_id, event_type, ts µs), newest first
    seen_items: tuple[str, ...] = ()
    purchased_items: tuple[str, ...] = ()
    events_total: int = 0
    views_total: int = 0
    carts_total: int = 0
    purchases_total: int = 0
    session_id: str | None = None
    session_events: int = 0
    session_views: int = 0
    session_carts: int = 0


def _push_front(items: tuple[str, ...], item: str, limit: int) -> tuple[str, ...]:
    return (item, *(i for i in items if i != item))[:limit]


def fold_event(
    state: RecentState | None,
    event_type: str,
    item_id: str,
    ts: datetime,
    session_id: str | None,
    limits: Limits = LIMITS,
) -> RecentState:
    """One event into a shopper's state. Events older than the state are ignored (late replays)."""
    if state is not None and ts < state.event_timestamp:
        return state
    if state is None:
        state = RecentState(event_timestamp=ts)
    if session_id is not None and session_id != state.session_id:
        state = replace(state, session_id=session_id, session_events=0, session_views=0, session_carts=0)
    recent = state.recent
    if event_type in INTERACTION_TYPES:
        entry = (item_id, event_type, to_us(ts))
        recent = (entry, *(e for e in recent if e[0] != item_id))[: limits.recent]
    viewed = event_type in VIEW_TYPES
    carted = event_type == CART_TYPE
    bought = event_type == PURCHASE_TYPE
    return replace(
        state,
        event_timestamp=ts,
        recent=recent,
        seen_items=_push_front(state.seen_items, item_id, limits.seen),
        purchased_items=_push_front(state.purchased_items, item_id, limits.purchased)
        if bought
        else state.purchased_items,
        events_total=state.events_total + 1,
        views_total=state.views_total + viewed,
        carts_total=state.carts_total + carted,
        purchases_total=state.purchases_total + bought,
        session_events=state.session_events + 1,
        session_views=state.session_views + viewed,
        session_carts=state.session_carts + carted,
    )


def fold_batch(
    states: Mapping[str, RecentState], events: pa.Table, limits: Limits = LIMITS
) -> dict[str, RecentState]:
    """Fold a micro-batch (any order) into ``states``; returns only the shoppers whose state changed.

    Events are taken in ``(ts, event_id)`` order, the lake's order, so ties fold as they do offline. An
    event not newer than the shopper's state from earlier batches is a replay (the stream re-delivers
    a batch after a crash; its rows may already be folded into what Redis holds) and is skipped, so a
    replay never counts an event twice.
    """
    if events.num_rows == 0:
        return {}
    keys = [("ts", "ascending")]
    if "event_id" in events.column_names:
        keys.append(("event_id", "ascending"))
    ordered = events.sort_by(keys).select(["user_id", "event_type", "item_id", "ts", "session_id"])
    changed: dict[str, RecentState] = {}
    for user, etype, item, ts, session in zip(
        *(ordered[c].to_pylist() for c in ordered.column_names), strict=True
    ):
        prior = states.get(user)
        if prior is not None and ts <= prior.event_timestamp:
            continue
        before = changed.get(user, prior)
        after = fold_event(before, etype, item, ts, session, limits)
        if after is not before:
            changed[user] = after
    return changed


def to_table(states: Mapping[str, RecentState]) -> pa.Table:
    """Rows of the view (``USER_RECENT_SCHEMA``), one per shopper, in the mapping's order."""
    users = list(states)
    rows = [states[u] for u in users]
    return pa.table(
        {
            "user_id": users,
            "event_timestamp": [r.event_timestamp for r in rows],
            "last_event_us": [to_us(r.event_timestamp) for r in rows],
            "recent_items": [[e[0] for e in r.recent] for r in rows],
            "recent_types": [[e[1] for e in r.recent] for r in rows],
            "recent_ts_us": [[e[2] for e in r.recent] for r in rows],
            "seen_items": [list(r.seen_items) for r in rows],
            "purchased_items": [list(r.purchased_items) for r in rows],
            "events_total": [r.events_total for r in rows],
            "views_total": [r.views_total for r in rows],
            "carts_total": [r.carts_total for r in rows],
            "purchases_total": [r.purchases_total for r in rows],
            "session_id": [r.session_id for r in rows],
            "session_events": [r.session_events for r in rows],
            "session_views": [r.session_views for r in rows],
            "session_carts": [r.session_carts for r in rows],
        },
        schema=USER_RECENT_SCHEMA,
    )


def from_row(row: Mapping[str, Any]) -> RecentState | None:
    """A state from a row of the view (as read back online: plain names, lists or None); None when the
    row is empty (a shopper the store does not know)."""
    last = row.get("last_event_us")
    if last is None or (isinstance(last, float) and np.isnan(last)):
        return None

    def items(name: str) -> list[Any]:
        value = row.get(name)
        return list(value) if value is not None and not isinstance(value, float) else []

    def count(name: str) -> int:
        value = row.get(name)
        return int(value) if value is not None and not pd.isna(value) else 0

    session = row.get("session_id")
    return RecentState(
        event_timestamp=from_us(int(last)),
        recent=tuple(
            (str(i), str(t), int(s))
            for i, t, s in zip(
                items("recent_items"), items("recent_types"), items("recent_ts_us"), strict=True
            )
        ),
        seen_items=tuple(str(i) for i in items("seen_items")),
        purchased_items=tuple(str(i) for i in items("purchased_items")),
        events_total=count("events_total"),
        views_total=count("views_total"),
        carts_total=count("carts_total"),
        purchases_total=count("purchases_total"),
        session_id=None if session is None or pd.isna(session) else str(session),
        session_events=count("session_events"),
        session_views=count("session_views"),
        session_carts=count("session_carts"),
    )


# ----------------------------------------------------------------------------- the same, over a log


def ordered_events(
    events: pd.DataFrame | pa.Table, as_of: datetime | pd.Timestamp | None = None
) -> pd.DataFrame:
    """The columns the view reads, events before ``as_of`` only, sorted by user, then ``(ts, event_id)``.

    ``ts`` becomes int64 µs (comparisons and sorts on tz-aware objects are far slower); ``pos`` is the
    row's rank in that order, which is what "newest" means below.
    """
    frame = events.to_pandas() if isinstance(events, pa.Table) else events
    ts = pd.to_datetime(frame["ts"], utc=True)
    us = ts.dt.tz_convert(None).to_numpy(dtype="datetime64[us]").astype(np.int64)
    out = pd.DataFrame(
        {
            "user_id": frame["user_id"].astype(str).to_numpy(dtype=object),
            "item_id": frame["item_id"].astype(str).to_numpy(dtype=object),
            "event_type": frame["event_type"].astype(str).to_numpy(dtype=object),
            "ts_us": us,
            "session_id": frame["session_id"].to_numpy(dtype=object)
            if "session_id" in frame
            else np.full(len(frame), None, dtype=object),
            "event_id": frame["event_id"].astype(str).to_numpy(dtype=object)
            if "event_id" in frame
            else np.full(len(frame), "", dtype=object),
        }
    )
    if as_of is not None:
        stamp = pd.Timestamp(as_of)
        stamp = stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)
        out = out.loc[out["ts_us"] < to_us(stamp.to_pydatetime())]
    out = out.sort_values(["user_id", "ts_us", "event_id"], kind="stable").reset_index(drop=True)
    out["pos"] = np.arange(len(out), dtype=np.int64)
    return out


def newest_distinct(events: pd.DataFrame, limit: int) -> pd.DataFrame:
    """Rows of ``ordered_events`` kept at each (user, item)'s latest event, newest first, at most
    ``limit`` per user; sorted by user, then newest first."""
    last = events.drop_duplicates(["user_id", "item_id"], keep="last")
    last = last.sort_values(["user_id", "pos"], ascending=[True, False], kind="stable")
    return last.loc[last.groupby("user_id", sort=False).cumcount() < limit]


def grouped_lists(
    keys: np.ndarray, values: Sequence[Any] | np.ndarray, wanted: Sequence[Any] | np.ndarray
) -> list[list[Any]]:
    """``values`` (sorted by ``keys``) as one list per key of ``wanted``; [] for absent keys."""
    keys = np.asarray(keys)
    chunks = list(values) if not isinstance(values, np.ndarray) else values.tolist()
    if not len(keys):
        return [[] for _ in wanted]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends = np.r_[starts[1:], len(keys)]
    where = pd.Index(keys[starts]).get_indexer(np.asarray(wanted, dtype=object))
    return [chunks[starts[w] : ends[w]] if w >= 0 else [] for w in where]


def _lists(rows: pd.DataFrame, column: str, users: np.ndarray) -> list[list[Any]]:
    return grouped_lists(rows["user_id"].to_numpy(), rows[column].to_numpy(), users)


def recent_interactions(
    events: pd.DataFrame | pa.Table, limit: int = RECENT_ITEMS, as_of: datetime | pd.Timestamp | None = None
) -> pd.DataFrame:
    """The view's recent list as rows (``user_id, item_id, event_type, ts_us``): each user's newest
    distinct interactions before ``as_of``, at most ``limit``; sorted by user, then newest first."""
    ev = ordered_events(events, as_of)
    return newest_distinct(ev.loc[ev["event_type"].isin(INTERACTION_TYPES).to_numpy()], limit)


def from_events(
    events: pd.DataFrame | pa.Table,
    as_of: datetime | pd.Timestamp | None = None,
    users: Sequence[str] | None = None,
    limits: Limits = LIMITS,
) -> pa.Table:
    """The view's rows for every shopper with an event before ``as_of`` (default: all events), or only
    for ``users``; what :func:`fold_batch` would have built from the same events, in time order.

    Rows are sorted by ``user_id`` and stamped with each shopper's newest event.
    """
    ev = ordered_events(events, as_of)
    if users is not None:
        ev = ev.loc[ev["user_id"].isin({str(u) for u in users})].reset_index(drop=True)
    if ev.empty:
        return USER_RECENT_SCHEMA.empty_table()
    by_user = ev.groupby("user_id", sort=True)
    ids = np.asarray(list(by_user.groups), dtype=object)
    etype = ev["event_type"]
    viewed = etype.isin(VIEW_TYPES).to_numpy()
    carted = (etype == CART_TYPE).to_numpy()
    bought = (etype == PURCHASE_TYPE).to_numpy()
    counts = pd.DataFrame({"user_id": ev["user_id"], "v": viewed, "c": carted, "p": bought})
    totals = counts.groupby("user_id", sort=True)[["v", "c", "p"]].sum()
    last_us = by_user["ts_us"].max().to_numpy(dtype=np.int64)

    recent = newest_distinct(ev.loc[etype.isin(INTERACTION_TYPES).to_numpy()], limits.recent)
    seen = newest_distinct(ev, limits.seen)
    purchased = newest_distinct(ev.loc[bought], limits.purchased)

    # Sessions: the id carried forward over events without one; a run ends where it changes (as the
    # fold resets its counters), and the counters are those of each shopper's last run.
    session = ev.groupby("user_id", sort=False)["session_id"].ffill()
    marker = session.fillna("\x00none").to_numpy(dtype=object)
    user_arr = ev["user_id"].to_numpy(dtype=object)
    start = np.r_[True, (marker[1:] != marker[:-1]) | (user_arr[1:] != user_arr[:-1])]
    run = np.cumsum(start)
    last_run = pd.Series(run).groupby(user_arr).transform("max").to_numpy()
    in_last = run == last_run
    session_rows = (
        pd.DataFrame({"user_id": user_arr[in_last], "e": 1, "v": viewed[in_last], "c": carted[in_last]})
        .groupby("user_id", sort=True)[["e", "v", "c"]]
        .sum()
    )
    current = session.groupby(ev["user_id"], sort=True).last()

    return pa.table(
        {
            "user_id": ids.tolist(),
            "event_timestamp": pa.array(last_us, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            "last_event_us": last_us,
            "recent_items": _lists(recent, "item_id", ids),
            "recent_types": _lists(recent, "event_type", ids),
            "recent_ts_us": _lists(recent, "ts_us", ids),
            "seen_items": _lists(seen, "item_id", ids),
            "purchased_items": _lists(purchased, "item_id", ids),
            "events_total": by_user.size().to_numpy(dtype=np.int64),
            "views_total": totals["v"].to_numpy(dtype=np.int64),
            "carts_total": totals["c"].to_numpy(dtype=np.int64),
            "purchases_total": totals["p"].to_numpy(dtype=np.int64),
            "session_id": [None if pd.isna(s) else str(s) for s in current.reindex(ids)],
            "session_events": session_rows["e"].reindex(ids).to_numpy(dtype=np.int64),
            "session_views": session_rows["v"].reindex(ids).to_numpy(dtype=np.int64),
            "session_carts": session_rows["c"].reindex(ids).to_numpy(dtype=np.int64),
        },
        schema=USER_RECENT_SCHEMA,
    )
