"""The online adapter builds a shopper's context from plain rows (``RowContexts``), without DataFrames:
on the same rows it answers exactly what the frame-backed ``Contexts`` answers, contexts and query frames."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from feature_repo.user_recent import from_events
from models.context import FEATURE_COLUMNS, VIEW_COLUMNS, Contexts, RowContexts
from models.features import USER_NUMERIC
from tests.unit.test_user_recent import random_log


def _feature_rows(users: list[str], rng: np.random.Generator) -> dict[str, dict[str, Any]]:
    """What Feast returns: ints, floats, strings and None, per shopper."""
    out: dict[str, dict[str, Any]] = {}
    for n, user in enumerate(users):
        row: dict[str, Any] = {}
        for column in FEATURE_COLUMNS:
            if rng.random() < 0.25:
                row[column] = None
            elif column in USER_NUMERIC:
                row[column] = int(rng.integers(0, 9)) if n % 2 else float(rng.random() * 50)
            else:
                row[column] = str(rng.choice(["Toys", "Garden", "Electronics>Phones"]))
        out[user] = row
    return out


def _same(a: Any, b: Any) -> bool:
    na = a is None or (isinstance(a, float) and math.isnan(a))
    nb = b is None or (isinstance(b, float) and math.isnan(b))
    return (na and nb) or (not na and not nb and (a == b if not isinstance(a, float) else float(b) == a))


@pytest.mark.parametrize("now", [None, datetime(2026, 3, 2, tzinfo=UTC)])
def test_rows_give_the_contexts_and_queries_of_frames(now: datetime | None) -> None:
    rng = np.random.default_rng(3)
    view = from_events(random_log(7, 600))
    frame = view.to_pandas()
    rows = {str(r["user_id"]): {c: r[c] for c in VIEW_COLUMNS} for r in frame.to_dict("records")}
    known = list(rows)
    features = _feature_rows([*known[:-1], "features-only"], rng)  # one shopper with history, no features
    frame_features = pd.DataFrame.from_dict(features, orient="index", columns=list(FEATURE_COLUMNS))
    expected = Contexts(frame, frame_features, now=now)
    got = RowContexts(rows, features, now=now)
    asked = [*known, "features-only", "nobody"]
    assert got.users == expected.users
    for user in asked:
        assert (user in got) == (user in expected)
        assert got.get(user) == expected.get(user), user
    for users in (asked, [known[0]], ["nobody"], ["features-only"]):
        want, have = expected.queries(users), got.queries(users)
        assert have.excluded == want.excluded and have.purchased == want.purchased
        assert list(have.frame.columns) == list(want.frame.columns)
        for column in want.frame.columns:
            pairs = zip(have.frame[column].tolist(), want.frame[column].tolist(), strict=True)
            assert all(_same(a, b) for a, b in pairs), column


def test_no_rows_is_an_empty_context_for_everyone() -> None:
    empty = RowContexts({})
    assert "u1" not in empty and empty.users == []
    assert empty.get("u1") == Contexts(
        pa.Table.from_pylist([], schema=from_events(random_log(1, 5)).schema)
    ).get("u1")
    queries = empty.queries(["u1"])
    assert list(queries.frame.columns) == ["user_id", "recent_items", "days_since_last_event"]
    assert queries.excluded == [set()] and np.isnan(queries.frame["days_since_last_event"].iloc[0])
