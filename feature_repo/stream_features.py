"""Stream features: what the shopper did a moment ago, pushed to the online store per micro-batch.

The rows are the ``user_recent`` view (feature_repo/user_recent.py defines it and folds events into it
with a pure function). The pusher keeps the state of recently active shoppers in memory (bounded LRU);
a shopper it does not hold yet is first read back from the online store, so a restarted consumer extends
what Redis holds (the materialized lake copy, or earlier pushes) instead of replacing it. Changed rows go
through Feast's push source. A push that fails (Redis down) is logged and retried with the next batch;
while the store cannot be read, the events of shoppers not yet seeded wait (bounded) rather than being
folded onto an empty state. The lake stays the durable copy, and ingestion never waits on the store.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from feature_repo.user_recent import RecentState, fold_batch, from_row, to_table

log = logging.getLogger("aisle.stream_features")

#: Events held back while the online store cannot be read (beyond it the oldest are dropped, counted).
MAX_BACKLOG_ROWS = 200_000


@dataclass
class StreamFeaturePusher:
    """The stream consumer's ``on_batch`` hook: fold validated events, push changed users online."""

    settings: Any
    max_users: int = 200_000
    states: OrderedDict[str, RecentState] = field(default_factory=OrderedDict)
    pending: dict[str, RecentState] = field(default_factory=dict)  # folded but not yet pushed
    backlog: list[pa.Table] = field(default_factory=list)  # events of shoppers not yet seeded
    pushed_rows: int = 0
    failed_pushes: int = 0
    failed_reads: int = 0
    dropped_events: int = 0
    seconds: dict[str, float] = field(default_factory=dict)  # the last batch's fold and push times

    def __call__(self, good: pa.Table) -> None:
        self.seconds = {}
        if good.num_rows == 0 or "user_id" not in good.column_names:
            return
        started = time.perf_counter()
        self.backlog.append(good)
        batch = pa.concat_tables(self.backlog, promote_options="default")
        if not self._seed(batch):
            while len(self.backlog) > 1 and sum(t.num_rows for t in self.backlog) > MAX_BACKLOG_ROWS:
                self.dropped_events += self.backlog.pop(0).num_rows
            return
        self.backlog.clear()
        changed = fold_batch(self.states, batch)
        for user, state in changed.items():
            self.states[user] = state
            self.states.move_to_end(user)
        while len(self.states) > self.max_users:
            self.states.popitem(last=False)
        self.pending.update(changed)
        folded = time.perf_counter()
        self.flush()
        self.seconds = {"fold": folded - started, "push": time.perf_counter() - folded}

    def _seed(self, batch: pa.Table) -> bool:
        """Read the online rows of shoppers not held in memory; False when the store cannot be read."""
        unknown = [u for u in pc.unique(batch["user_id"]).to_pylist() if u not in self.states]
        if not unknown:
            return True
        from feature_repo.online import read_user_recent

        try:
            rows = read_user_recent(self.settings, unknown)
        except Exception as exc:  # Redis down, store not applied yet: keep the events for the next batch
            self.failed_reads += 1
            if self.failed_reads == 1 or self.failed_reads % 100 == 0:
                log.warning(
                    "stream features: online state not readable (%s); %d events wait for the next try",
                    exc,
                    sum(t.num_rows for t in self.backlog),
                )
            return False
        for user, row in rows.items():
            state = from_row(row)
            if state is not None:
                self.states[user] = state
        return True

    def flush(self) -> None:
        if not self.pending:
            return
        from feature_repo.online import push_user_recent

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
            "failed_reads": self.failed_reads,
            "waiting_events": sum(t.num_rows for t in self.backlog),
            "dropped_events": self.dropped_events,
        }


def latest_ts(events: pa.Table) -> datetime | None:
    return pc.max(events["ts"]).as_py() if events.num_rows else None
