"""``aisle recommend-batch``: the registered policy over a list of users, written as one CSV.

The same policy serving uses, with the same context: the shopper-context contract (``models.context``)
built by its lake adapter, with user features from Feast as of the newest event. Users the lake has never
seen are not an error: they get the cold-start list and are counted, so a caller can tell how many.
"""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from aisle.core.errors import BadInput
from aisle.core.settings import Settings
from models import registry
from models.context import PolicyQueries, from_lake
from models.data import load_events, read_user_file
from models.hybrid import COLD_START, HybridPolicy, Recommendation

log = logging.getLogger(__name__)
CHUNK = 1024


def _user_features(settings: Settings, users: list[str], as_of: pd.Timestamp) -> pd.DataFrame | None:
    """Feast user features as of ``as_of``; None (cold features, still answers) if Feast has none."""
    from models.features import snapshot_features

    if not users:
        return None
    try:
        user_df, _ = snapshot_features(settings, users, [], as_of)
    except BadInput as exc:
        log.warning("no Feast user features (%s); ranking without them", exc)
        return None
    return user_df


#: Answers a chunk of shoppers: ``predict(queries, users, k, include_seen)`` → one list per shopper.
Predict = Callable[[PolicyQueries, list[str], int, bool], list[Recommendation]]
#: Builds the ``Predict`` of a loaded policy (and its version). ``aisle recommend-batch`` passes serving's
#: predict path (business rules included), so a batch list equals the /recommend answer for the same
#: shopper and state; without one the bare policy answers.
PredictFactory = Callable[[HybridPolicy, str], Predict]


def bare_policy(policy: HybridPolicy, version: str) -> Predict:
    """The policy alone: seen (and purchased) items excluded unless ``include_seen``."""

    def predict(queries: PolicyQueries, users: list[str], k: int, include_seen: bool) -> list[Recommendation]:
        seen = [set() for _ in users] if include_seen else queries.excluded
        return policy.recommend(queries.frame, k, seen)

    return predict


def recommend_batch(
    settings: Settings,
    users_file: str,
    k: int,
    out: Path,
    include_seen: bool = False,
    version: str | None = None,
    alias: str = registry.CHAMPION,
    advance: Callable[[int], None] | None = None,
    predictor: PredictFactory = bare_policy,
) -> dict[str, Any]:
    if k < 1:
        raise BadInput(f"--k must be at least 1 (got {k})")
    started = time.perf_counter()
    users = read_user_file(users_file)
    policy_dir, chosen = registry.download_policy(settings, alias=alias, version=version)
    policy = HybridPolicy.load(policy_dir)
    events = load_events(settings)
    known = set(events["user_id"].unique())
    asked = events.loc[events["user_id"].isin(users)]  # history of the requested users only
    as_of = events["ts"].max() + pd.Timedelta(microseconds=1)
    features = _user_features(settings, [u for u in users if u in known], as_of)
    # measured to the wall clock, as /recommend measures it (models.context.coarse_days)
    contexts = from_lake(asked, as_of=as_of, user_features=features, now=datetime.now(UTC))
    predict = predictor(policy, chosen)
    setup_seconds = time.perf_counter() - started
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = cold = 0
    short_lists = 0
    with open(out, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["user_id", "item_id", "rank", "score"])
        for start in range(0, len(users), CHUNK):
            chunk = users[start : start + CHUNK]
            queries = contexts.queries(chunk)
            for user, rec in zip(chunk, predict(queries, chunk, k, include_seen), strict=True):
                cold += rec.source == COLD_START
                short_lists += len(rec.items) < k
                for rank, (item, score) in enumerate(zip(rec.items, rec.scores, strict=True), start=1):
                    writer.writerow([user, item, rank, f"{score:.6g}"])
                    rows += 1
            if advance is not None:
                advance(len(chunk))
    seconds = time.perf_counter() - started
    unknown = sum(1 for u in users if u not in known)
    return {
        "users": len(users),
        "known_users": len(users) - unknown,
        "unknown_users": unknown,
        "cold_start": cold,
        "short_lists": short_lists,
        "rows": rows,
        "k": k,
        "include_seen": include_seen,
        "model": registry.REGISTERED_MODEL,
        "model_version": chosen,
        "out": str(out),
        # end to end, setup included; setup (loading the policy, the lake and Feast features) is fixed
        "users_per_s": round(len(users) / seconds, 1) if seconds > 0 else None,
        "setup_seconds": round(setup_seconds, 3),
    }
