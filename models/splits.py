"""Where a run cuts time: the test period, the validation period before it, and backtest folds.

A strict global time split: everything before the cut trains, everything at or after it tests, for
every user (new users included), so a model is judged on the future it would have served. The cut is
chosen from the data, not assumed: by default the last ``test_fraction`` of the events (a log whose tail
is thin still gets a test period of a useful size), or a date, or the last N days. The validation
period is cut the same way from the *training* events only, so whatever is tuned on it (windows,
half-lives, neighbours, the cold-start list, the ranker's labels) never reads the test period.
A backtest repeats the split at several cut-offs rolling back in time, each fold testing on the
period that follows its cut.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from aisle.core.errors import BadInput
from models.evaluation import Split, split_at


@dataclass(frozen=True)
class SplitSpec:
    """How to choose the test cut: ``test_start`` (a date) wins over ``holdout_days``, which wins over
    ``test_fraction``. ``validation_fraction`` is the share of the training events the validation
    period takes."""

    test_fraction: float = 0.1
    holdout_days: int | None = None
    test_start: str | None = None
    test_end: str | None = None
    validation_fraction: float = 0.1

    def __post_init__(self) -> None:
        for name in ("test_fraction", "validation_fraction"):
            value = getattr(self, name)
            if not 0.0 < value < 0.5:
                raise BadInput(f"{name} must be in (0, 0.5) (got {value})")
        if self.holdout_days is not None and self.holdout_days < 1:
            raise BadInput(f"holdout_days must be at least 1 (got {self.holdout_days})")
        for name in ("test_start", "test_end"):
            if getattr(self, name) is not None:
                _stamp(getattr(self, name), name)

    def describe(self) -> str:
        if self.test_start is not None:
            return f"events from {self.test_start} on"
        if self.holdout_days is not None:
            return f"the last {self.holdout_days} day(s)"
        return f"the last {self.test_fraction:.0%} of events"


def _stamp(text: str, name: str = "test_start") -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(text)
    except (ValueError, TypeError):
        raise BadInput(f"{name} must be a date or time like 2026-02-01 (got {text!r})") from None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def fraction_cut(events: pd.DataFrame, fraction: float) -> pd.Timestamp:
    """The instant at which the last ``fraction`` of the events (by time) begins."""
    ts = pd.to_datetime(events["ts"], utc=True).sort_values(ignore_index=True)
    if len(ts) < 2:
        raise BadInput(f"{len(ts)} event(s) cannot be split in time; ingest more data")
    index = min(len(ts) - 1, max(1, int(np.floor(len(ts) * (1.0 - fraction)))))
    return pd.Timestamp(ts.iloc[index])


def test_cut(events: pd.DataFrame, spec: SplitSpec) -> pd.Timestamp:
    if spec.test_start is not None:
        return _stamp(spec.test_start)
    if spec.holdout_days is not None:
        return pd.to_datetime(events["ts"], utc=True).max() - pd.Timedelta(days=spec.holdout_days)
    return fraction_cut(events, spec.test_fraction)


def holdout(events: pd.DataFrame, spec: SplitSpec, min_users: int = 1) -> Split:
    """The run's train/test split, refused in one sentence when the data is too thin for it."""
    cut = test_cut(events, spec)
    split = split_at(events, cut, _stamp(spec.test_end, "test_end") if spec.test_end else None)
    if split.train.empty:
        raise BadInput(
            f"no events before the test period ({spec.describe()}, from {cut:%Y-%m-%d}); "
            "choose a later --test-start or a smaller --test-fraction"
        )
    if len(split.users) < min_users:
        raise BadInput(
            f"the test period ({spec.describe()}, from {cut:%Y-%m-%d %H:%M}) holds only {len(split.users)} "
            f"user(s) with new interactions (need {min_users}): the data is too thin to evaluate; ingest "
            "more, or give the test period more of the data (--test-fraction, --test-start)"
        )
    return split


def validation(train: pd.DataFrame, spec: SplitSpec) -> Split:
    """The validation split cut from the training events alone (the last ``validation_fraction``)."""
    return split_at(train, fraction_cut(train, spec.validation_fraction))


def backtest_cuts(
    events: pd.DataFrame, spec: SplitSpec, folds: int
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """``folds`` (cut, end) pairs rolling back in time: fold 1 is the run's own test period, each earlier
    fold tests on the period of the same share of events (or days) just before the later one's cut."""
    if folds < 1:
        raise BadInput(f"backtest needs at least 1 fold (got {folds})")
    end = pd.to_datetime(events["ts"], utc=True).max() + pd.Timedelta(microseconds=1)
    cuts: list[tuple[pd.Timestamp, pd.Timestamp]] = []
    for _ in range(folds):
        before = events.loc[pd.to_datetime(events["ts"], utc=True) < end]
        if spec.holdout_days is not None:
            cut = end - pd.Timedelta(days=spec.holdout_days)
        else:
            # the same number of events per fold: the fraction is of the whole log
            share = spec.test_fraction * len(events) / max(1, len(before))
            if share >= 0.5:
                break
            cut = fraction_cut(before, share)
        cuts.append((cut, end))
        end = cut
    return cuts
