"""Stream features: what the shopper did a moment ago, pushed to the online store per micro-batch.

The fold is a pure function (state + events → new state), so it is tested without Redis; the pusher keeps
the state of recently active users in memory (bounded LRU) and pushes the changed rows through Feast's
push source. A push that fails (Redis down) is logged and retried with the next batch: the lake stays the
durable copy, and ingestion never waits on the online store.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from feature_repo.tables import RECENT_ITEMS, USER_RECENT_SCHEMA

log = logging.getLogger("aisle.stream_features")

VIEW_TYPES = frozenset({"view", "click"})


@dataclass(frozen=True)
class RecentState:
    event_timestamp: datetime
    recent_viewed: tuple[str, ...] = ()
    recent_carted: tuple[str, ...] = ()
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
    limit: int = RECENT_ITEMS,
) -> RecentState:
    """One event into a user's recent state. Events older than the state are ignored (late replays)."""
    if state is not None and ts < state.event_timestamp:
        return state
    if state is None:
        state = RecentState(event_timestamp=ts)
    if session_id is not None and session_id != state.session_id:
        state = replace(state, session_id=session_id, session_events=0, session_views=0, session_carts=0)
    viewed, carted = state.recent_viewed, state.recent_carted
    views, carts = state.session_views, state.session_carts
    if event_type in VIEW_TYPES:
        viewed, views = _push_front(viewed, item_id, limit), views + 1
    elif event_type == "add_to_cart":
        carted, carts = _push_front(carted, item_id, limit), carts + 1
    elif event_type in ("remove_from_cart", "purchase"):
        carted = tuple(i for i in carted if i != item_id)
    return replace(
        state,
        event_timestamp=ts,
        recent_viewed=viewed,
        recent_carted=carted,
        session_events=state.session_events + 1,
        session_views=views,
        session_carts=carts,
    )


def fold_batch(
    states: dict[str, RecentState], events: pa.Table, limit: int = RECENT_ITEMS
) -> dict[str, RecentState]:
    """Fold a batch (any order) into ``states``; returns only the users whose state changed."""
    if events.num_rows == 0:
        return {}
    ordered = events.select(["user_id", "event_type", "item_id", "ts", "session_id"]).sort_by("ts")
    changed: dict[str, RecentState] = {}
    for user, etype, item, ts, session in zip(
        *(ordered[c].to_pylist() for c in ordered.column_names), strict=True
    ):
        before = changed.get(user, states.get(user))
        after = fold_event(before, etype, item, ts, session, limit)
        if after is not before:
            changed[user] = after
    return changed


def to_table(changed: dict[str, RecentState]) -> pa.Table:
    users = list(changed)
    rows = [changed[u] for u in users]
    return pa.table(
        {
            "user_id": users,
            "event_timestamp": [r.event_timestamp for r in rows],
            "recent_viewed": [list(r.recent_viewed) for r in rows],
            "recent_carted": [list(r.recent_carted) for r in rows],
            "session_id": [r.session_id for r in rows],
            "session_events": [r.session_events for r in rows],
            "session_views": [r.session_views for r in rows],
            "session_carts": [r.session_carts for r in rows],
        },
        schema=USER_RECENT_SCHEMA,
    )


@dataclass
class StreamFeaturePusher:
    """The stream consumer's ``on_batch`` hook: fold validated events, push changed users online."""

    settings: Any
    max_users: int = 200_000
    states: OrderedDict[str, RecentState] = field(default_factory=OrderedDict)
    pending: dict[str, RecentState] = field(default_factory=dict)  # folded but not yet pushed
    pushed_rows: int = 0
    failed_pushes: int = 0

    def __call__(self, good: pa.Table) -> None:
        if good.num_rows == 0 or "user_id" not in good.column_names:
            return
        changed = fold_batch(dict(self.states), good)
        for user, state in changed.items():
            self.states[user] = state
            self.states.move_to_end(user)
        while len(self.states) > self.max_users:
            self.states.popitem(last=False)
        self.pending.update(changed)
        self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        from feature_repo.store import push_user_recent

        try:
            push_user_recent(self.settings, to_table(self.pending).to_pandas())
        except Exception as exc:  # Redis down, store not applied yet: ingestion must go on regardless
            self.failed_pushes += 1
            if self.failed_pushes == 1 or self.failed_pushes % 100 == 0:
                log.warning(
                    "stream features not pushed (%s); %d users kept for the next try", exc, len(self.pending)
                )
            return
        self.pushed_rows += len(self.pending)
        self.pending.clear()

    def summary(self) -> dict[str, int]:
        return {
            "pushed_rows": self.pushed_rows,
            "pending_users": len(self.pending),
            "failed_pushes": self.failed_pushes,
        }


def latest_ts(events: pa.Table) -> datetime | None:
    return pc.max(events["ts"]).as_py() if events.num_rows else None
