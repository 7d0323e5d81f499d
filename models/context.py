"""What the policy knows about a shopper at time T: one contract, read from the lake or the online store.

A shopper's context at T is built from their events strictly before T and from Feast's user features:

============================  =====================================================================
field                         meaning (units, bounds)
============================  =====================================================================
``user_id``                   the shopper (any string; unknown shoppers get an empty context)
``last_event_at``             time of their newest event before T (UTC, µs); None when there is none
``recent``                    ``RecentItem(item_id, event_type, ts)``: distinct items of their
                              interactions (view, click, add_to_cart, wishlist, purchase, rating:
                              ``INTERACTION_TYPES``), newest first by each item's latest
                              interaction, at most ``RECENT_ITEMS`` (50)
``seen``                      distinct items of any event, newest first, at most ``SEEN_ITEMS`` (200)
``purchased``                 distinct items bought, newest first, at most ``PURCHASED_ITEMS`` (100)
``counters``                  events / views (view + click) / carts / purchases over all their events;
                              the session id of their latest events and that session's events, views
                              and carts (counted since the session id last changed)
``features``                  Feast ``user_features`` as of T (full names, ``user_features__views_7d``
                              ...); only the features Feast holds, so {} for a shopper it does not know
============================  =====================================================================

Everything but ``features`` is one row of the ``user_recent`` view (``feature_repo/user_recent.py``
defines it and computes it two ways: a pure fold per micro-batch, and vectorised over a log).

Two adapters produce :class:`Contexts` (many shoppers at once, columnar):

* :func:`from_lake`: events before T (training, evaluation, ``recommend-batch``); features from the
  offline store as of T when the caller passes them.
* :func:`from_online`: the online store (serving), one Redis round trip for the ``user_recent`` rows and
  the materialized user features of every requested shopper, with a timeout. When Redis is down, slow
  or not set up, the result says so (``degraded`` and a one-sentence ``reason``) and every shopper gets
  an empty context, so the caller answers with cold-start lists instead of hanging or failing.

How they agree: the stream consumer folds each micro-batch into the view and pushes the rows (seeded from
what Redis already holds), and the feature build writes the same rows from the lake, which
materialization loads into Redis (a row only replaces an older one). So for events that reached the
stream in time order, the online row of a shopper equals the lake's row as of just after their newest
event; ``tests/integration/test_context.py`` sends one set of events through Kafka and checks both
adapters give the same contexts. Known differences are listed in ``feature_repo/user_recent.py``.

The policy's query (:meth:`Contexts.queries`): ``recent_items`` = the ``recent`` item ids (the policy
keeps the first ``PolicyConfig.recent_items``), ``days_since_last_event`` (from ``last_event_at`` to the
contexts' ``now``: T for the lake adapter, the time of the read online; NaN without history), the user
feature columns, and per shopper the items never to recommend (``seen`` ∪ ``purchased``) and the
purchased set alone (business rules).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa

from aisle.core.errors import ServiceUnavailable
from aisle.core.settings import Settings
from feature_repo.tables import USER_FEATURES, USER_RECENT, USER_RECENT_SCHEMA
from feature_repo.user_recent import from_events, from_us, to_us
from models.features import USER_CATEGORICAL, USER_NUMERIC

log = logging.getLogger(__name__)

#: The Feast user features a context carries (and the policy's query frame holds as columns).
FEATURE_COLUMNS: Final = (*USER_NUMERIC, *USER_CATEGORICAL)
#: Columns of the view a context reads (everything of USER_RECENT_SCHEMA but the key and row time).
VIEW_COLUMNS: Final = tuple(n for n in USER_RECENT_SCHEMA.names if n not in ("user_id", "event_timestamp"))
_FEATURE_PREFIX: Final = f"{USER_FEATURES}__"
_VIEW_PREFIX: Final = f"{USER_RECENT}__"


@dataclass(frozen=True)
class RecentItem:
    item_id: str
    event_type: str
    ts: datetime  # UTC


@dataclass(frozen=True)
class Counters:
    events: int = 0
    views: int = 0
    carts: int = 0
    purchases: int = 0
    session_id: str | None = None
    session_events: int = 0
    session_views: int = 0
    session_carts: int = 0


@dataclass(frozen=True)
class ShopperContext:
    """One shopper at time T (see the module docstring for every field's meaning and bounds)."""

    user_id: str
    last_event_at: datetime | None = None
    recent: tuple[RecentItem, ...] = ()
    seen: tuple[str, ...] = ()
    purchased: tuple[str, ...] = ()
    counters: Counters = Counters()
    features: Mapping[str, Any] = field(default_factory=dict)

    @property
    def recent_items(self) -> list[str]:
        return [r.item_id for r in self.recent]

    @property
    def has_history(self) -> bool:
        return self.last_event_at is not None

    def excluded(self) -> set[str]:
        """Items never to recommend to this shopper: everything they touched or bought."""
        return {*self.seen, *self.purchased}


class PolicyQueries:
    """What ``HybridPolicy.recommend`` takes: the query rows and, per row, the items to leave out.

    The rows are ``columns`` (user_id, recent_items newest first, days_since_last_event,
    FEATURE_COLUMNS): a frame, or plain columns (a mapping of equal-length sequences) where a frame per
    request would cost more than the answer (serving reads one shopper). ``frame`` builds the frame from
    plain columns on first use."""

    def __init__(
        self,
        columns: pd.DataFrame | Mapping[str, Sequence[Any]],
        excluded: list[set[str]],
        purchased: list[set[str]],
    ) -> None:
        self.columns = columns
        self.excluded = excluded  # seen ∪ purchased
        self.purchased = purchased
        self._frame = columns if isinstance(columns, pd.DataFrame) else None

    @property
    def frame(self) -> pd.DataFrame:
        if self._frame is None:
            self._frame = pd.DataFrame(dict(self.columns))
        return self._frame

    def __len__(self) -> int:
        return len(self.columns["user_id"])

    def value(self, column: str, row: int) -> Any:
        """One row's value of ``column`` (None when the rows have no such column)."""
        if column not in self.columns:
            return None
        values = self.columns[column]
        return values.iloc[row] if isinstance(values, pd.Series) else values[row]


def _plain(value: Any) -> Any:
    """A feature value as plain Python, None for null/NaN, so online and offline values compare equal."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return float(value)
    if isinstance(value, float | np.floating):
        return None if math.isnan(float(value)) else float(value)
    return str(value)


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple | np.ndarray) else []


def _present(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A shopper's feature values as plain Python, the missing ones left out."""
    plain = {k: _plain(v) for k, v in raw.items()}
    return {k: v for k, v in plain.items() if v is not None}


def _shopper(user: str, row: Mapping[str, Any], features: dict[str, Any]) -> ShopperContext:
    """The context of a shopper with a row of the view (a frame's row or a mapping of its columns)."""
    recent = tuple(
        RecentItem(str(i), str(t), from_us(int(s)))
        for i, t, s in zip(
            _list(row["recent_items"]),
            _list(row["recent_types"]),
            _list(row["recent_ts_us"]),
            strict=True,
        )
    )
    session = row["session_id"]
    return ShopperContext(
        user_id=user,
        last_event_at=from_us(int(row["last_event_us"])),
        recent=recent,
        seen=tuple(str(i) for i in _list(row["seen_items"])),
        purchased=tuple(str(i) for i in _list(row["purchased_items"])),
        counters=Counters(
            events=int(row["events_total"]),
            views=int(row["views_total"]),
            carts=int(row["carts_total"]),
            purchases=int(row["purchases_total"]),
            session_id=None if session is None or pd.isna(session) else str(session),
            session_events=int(row["session_events"]),
            session_views=int(row["session_views"]),
            session_carts=int(row["session_carts"]),
        ),
        features=features,
    )


def _item_sets(
    recent: Iterable[Any], seen: Iterable[Any], bought: Iterable[Any]
) -> tuple[list[list[str]], list[set[str]], list[set[str]]]:
    """Per shopper (values of the view's list columns): recent item ids, excluded and purchased sets."""
    recent_items = [[str(i) for i in _list(v)] for v in recent]
    purchased = [{str(i) for i in _list(v)} for v in bought]
    touched = [{str(i) for i in _list(v)} for v in seen]
    excluded = [t | b for t, b in zip(touched, purchased, strict=True)]
    return recent_items, excluded, purchased


class Contexts:
    """Contexts of many shoppers at one time: rows of the view plus their Feast user features.

    ``view``: rows of ``USER_RECENT_SCHEMA`` (a table or frame with ``user_id``); ``features``: a frame
    indexed by ``user_id`` with any of ``FEATURE_COLUMNS`` (None: no features). Shoppers absent from both
    get empty contexts.
    """

    def __init__(
        self, view: pa.Table | pd.DataFrame, features: pd.DataFrame | None = None, now: datetime | None = None
    ):
        frame = view.to_pandas() if isinstance(view, pa.Table) else view
        self.now = now
        frame = frame.drop_duplicates("user_id", keep="last")
        self.view = frame.assign(user_id=frame["user_id"].astype(str)).set_index("user_id")
        if features is not None and len(features):
            present = [c for c in FEATURE_COLUMNS if c in features.columns]
            feats = features[present].copy()
            feats.index = feats.index.astype(str)
            self.features: pd.DataFrame | None = feats[~feats.index.duplicated(keep="last")]
        else:
            self.features = None

    def __contains__(self, user_id: object) -> bool:
        return str(user_id) in self.view.index

    @property
    def users(self) -> list[str]:
        """Shoppers with at least one event before T."""
        return self.view.index.tolist()

    def get(self, user_id: str) -> ShopperContext:
        user = str(user_id)
        features: dict[str, Any] = {}
        if self.features is not None and user in self.features.index:
            raw = self.features.loc[user]
            features = _present({k: raw[k] for k in self.features.columns})
        if user not in self.view.index:
            return ShopperContext(user, features=features)
        return _shopper(user, self.view.loc[user], features)

    def queries(self, user_ids: Iterable[str]) -> PolicyQueries:
        """The policy's query frame for ``user_ids`` (in that order), with the per-row item sets."""
        users = [str(u) for u in user_ids]
        rows = self.view.reindex(users)
        frame = pd.DataFrame({"user_id": users})
        frame["recent_items"], excluded, purchased = _item_sets(
            rows["recent_items"], rows["seen_items"], rows["purchased_items"]
        )
        last = pd.to_numeric(rows["last_event_us"], errors="coerce").to_numpy(dtype=np.float64)
        # without an explicit T, "now" is just after the newest event these contexts hold (all of them,
        # not just the shoppers asked for: a shopper's query must not depend on who is asked with them)
        if self.now is not None:
            now_us = float(to_us(self.now))
        else:
            held = pd.to_numeric(self.view["last_event_us"], errors="coerce").to_numpy(dtype=np.float64)
            now_us = float(np.nanmax(np.r_[held, -np.inf])) + 1.0
        frame["days_since_last_event"] = _days_since(last, now_us)
        if self.features is not None:
            joined = self.features.reindex(users).reset_index(drop=True)
            frame = pd.concat([frame, joined], axis=1)
        return PolicyQueries(frame, excluded, purchased)


def coarse_days(days: np.ndarray) -> np.ndarray:
    """Days rounded on a log scale (quarter steps of log2 of 1 + hours: minutes apart near now, about
    9 hours apart at two days, a day apart at a week): the ranker's ``days_since_last_event``. A
    recency feature needs no finer grain, and the coarse value does not change between two reads
    seconds apart, so the same shopper gets the same list from ``recommend-batch`` and from
    ``/recommend`` although each reads the clock at its own instant. NaN (no history) stays NaN."""
    hours = np.clip(np.asarray(days, dtype=np.float64), 0.0, None) * 24.0
    with np.errstate(invalid="ignore"):
        steps = np.round(4.0 * np.log2(1.0 + hours)) / 4.0
    return (np.exp2(steps) - 1.0) / 24.0


def _days_since(last_us: np.ndarray, now_us: float) -> np.ndarray:
    """``days_since_last_event`` of shoppers whose newest events are at ``last_us`` (NaN: none)."""
    since = (now_us - last_us) / 86_400_000_000.0 if np.isfinite(now_us) else np.full(len(last_us), np.nan)
    return coarse_days(since)


class RowContexts:
    """The online adapter's contexts: the same answers as :class:`Contexts` (``in``, ``users``, ``get``,
    ``queries``) from plain rows, without a DataFrame per request (a request reads one shopper, where
    pandas' per-operation overhead cost more than everything else the context needs).

    ``view``: user → the view's columns (``VIEW_COLUMNS``); ``features``: user → Feast user features
    (``FEATURE_COLUMNS``), only for shoppers with at least one present value.
    """

    def __init__(
        self,
        view: Mapping[str, Mapping[str, Any]],
        features: Mapping[str, Mapping[str, Any]] | None = None,
        now: datetime | None = None,
    ) -> None:
        self.now = now
        self._view = {str(u): row for u, row in view.items()}
        self._features = {str(u): row for u, row in (features or {}).items()}

    def __contains__(self, user_id: object) -> bool:
        return str(user_id) in self._view

    @property
    def users(self) -> list[str]:
        return list(self._view)

    def get(self, user_id: str) -> ShopperContext:
        user = str(user_id)
        features = _present(self._features[user]) if user in self._features else {}
        row = self._view.get(user)
        return ShopperContext(user, features=features) if row is None else _shopper(user, row, features)

    def queries(self, user_ids: Iterable[str]) -> PolicyQueries:
        """:meth:`Contexts.queries` from the rows: one frame built once, feature columns typed as the
        frame of the same rows would be (numeric as float64 with NaN; missing shoppers' values NaN)."""
        users = [str(u) for u in user_ids]
        rows = [self._view.get(u, _NO_ROW) for u in users]
        recent, excluded, purchased = _item_sets(
            (r["recent_items"] for r in rows),
            (r["seen_items"] for r in rows),
            (r["purchased_items"] for r in rows),
        )
        last = np.asarray([_number(r.get("last_event_us")) for r in rows], dtype=np.float64)
        if self.now is not None:
            now_us = float(to_us(self.now))
        else:  # as Contexts: just after the newest event held
            now_us = (
                max((_number(r.get("last_event_us")) for r in self._view.values()), default=-np.inf) + 1.0
            )
        columns: dict[str, Any] = {
            "user_id": users,
            "recent_items": recent,
            "days_since_last_event": _days_since(last, now_us),
        }
        if self._features:
            found = [self._features.get(u) for u in users]
            for column in FEATURE_COLUMNS:
                values = [np.nan if f is None else f.get(column) for f in found]
                if column in USER_NUMERIC:
                    columns[column] = np.asarray(
                        [np.nan if v is None else v for v in values], dtype=np.float64
                    )
                else:
                    columns[column] = np.asarray(values, dtype=object)
        return PolicyQueries(columns, excluded, purchased)


_NO_ROW: Final[Mapping[str, Any]] = {
    "recent_items": None,
    "seen_items": None,
    "purchased_items": None,
    "last_event_us": None,
}


def _number(value: Any) -> float:
    return np.nan if value is None else float(value)


#: What the online adapter answers: contexts from rows (or, for callers that build them, a frame).
AnyContexts = Contexts | RowContexts


# ----------------------------------------------------------------------------- the lake adapter


def from_lake(
    events: pd.DataFrame | pa.Table,
    as_of: datetime | pd.Timestamp | None = None,
    users: Sequence[str] | None = None,
    user_features: pd.DataFrame | None = None,
    now: datetime | None = None,
) -> Contexts:
    """Contexts from an event log: events strictly before ``as_of`` (default: all of them), for
    ``users`` (default: everyone in the log), with Feast user features the caller read as of T.
    ``now`` (the instant ``days_since_last_event`` is measured to) defaults to ``as_of``: an
    evaluation's T; ``recommend-batch`` passes the wall clock, as serving reads it."""
    view = from_events(events, as_of=as_of, users=users)
    if now is None and as_of is not None:
        stamp = pd.Timestamp(as_of)
        now = (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")).to_pydatetime()
    return Contexts(view, user_features, now=now)


# ----------------------------------------------------------------------------- the online adapter


@dataclass(frozen=True)
class OnlineContexts:
    """The online adapter's answer: contexts, and whether they are complete.

    ``degraded`` is True when the store could not be read in time (Redis down, slow, or the Feast repo
    not applied); then ``contexts`` is empty for everyone and ``reason`` says why in one sentence.
    """

    contexts: AnyContexts
    degraded: bool = False
    reason: str | None = None


def _empty() -> RowContexts:
    return RowContexts({})


def from_online(
    settings: Settings, user_ids: Sequence[str], timeout_s: float | None = None
) -> OnlineContexts:
    """Contexts from the online store: the stream's ``user_recent`` rows and the materialized user
    features, in one read bounded by ``timeout_s`` (default ``settings.online_read_timeout_ms``).

    Never raises for an unavailable store: the answer is degraded instead (see :class:`OnlineContexts`).
    """
    from feature_repo.online import online_users

    users = list(dict.fromkeys(str(u) for u in user_ids))
    wait = settings.online_read_timeout_ms / 1000.0 if timeout_s is None else timeout_s
    try:
        rows = online_users(settings, users, timeout_s=wait)
    except ServiceUnavailable as exc:  # ServiceTimeout included
        return OnlineContexts(_empty(), degraded=True, reason=str(exc))
    except Exception as exc:  # registry not applied, Feast internals: serve without context, say why
        log.warning("online context read failed: %s", exc)
        reason = f"the online store could not be read ({type(exc).__name__}: {exc})"
        return OnlineContexts(_empty(), degraded=True, reason=reason)
    view_rows: dict[str, dict[str, Any]] = {}
    feature_rows: dict[str, dict[str, Any]] = {}
    for user, row in rows.items():
        values = {k[len(_VIEW_PREFIX) :]: v for k, v in row.items() if k.startswith(_VIEW_PREFIX)}
        if values.get("last_event_us") is not None:
            view_rows[user] = {c: values.get(c) for c in VIEW_COLUMNS}
        features = {c: row.get(c) for c in FEATURE_COLUMNS if c.startswith(_FEATURE_PREFIX)}
        if any(_plain(v) is not None for v in features.values()):
            feature_rows[user] = features
    return OnlineContexts(RowContexts(view_rows, feature_rows, now=datetime.now(UTC)))
