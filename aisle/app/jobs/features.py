"""Jobs: Spark feature tables → `feast apply` → materialization into Redis; ad-hoc training sets."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from aisle.app.jobs import Step, no_step, parse_params
from aisle.core.errors import BadInput
from aisle.core.settings import Settings


@dataclass(frozen=True)
class ComputeParams:
    since: str | None = None  # recompute snapshots from this date (YYYY-MM-DD); None = everything

    def __post_init__(self) -> None:
        if self.since is not None:
            try:
                date.fromisoformat(str(self.since))
            except ValueError:
                raise BadInput(f"--since must be a date like 2026-02-01 (got {self.since!r})") from None

    @property
    def since_date(self) -> date | None:
        return date.fromisoformat(str(self.since)) if self.since else None


def stages() -> list[str]:
    """The progress stages of ``build``."""
    from feature_repo.compute.build import STAGES

    return [*STAGES, "feast apply", "materialize"]


def compute(settings: Settings, params: Any = None, *, progress: Step | None = None) -> dict[str, Any]:
    """The Spark feature tables from the lake (daily snapshots)."""
    from feature_repo.compute.build import build_features

    p = parse_params(ComputeParams, params)
    return build_features(settings, since=p.since_date, progress=progress)


def apply(settings: Settings, params: Any = None) -> dict[str, Any]:
    """`feast apply` of the repo rendered from settings."""
    from feature_repo.materialization import apply as feast_apply

    parse_params(_NoParams, params)
    return feast_apply(settings)


def materialize(settings: Settings, params: Any = None) -> dict[str, Any]:
    """Incremental materialization of the offline tables into the Redis online store."""
    from feature_repo.materialization import materialize as to_online

    parse_params(_NoParams, params)
    return to_online(settings)


def build(settings: Settings, params: Any = None, *, progress: Step | None = None) -> dict[str, Any]:
    """compute → apply → materialize, as `aisle features build` and the demo run it."""
    step = progress or no_step
    started = time.perf_counter()
    spark = compute(settings, params, progress=step)
    step("feast apply")
    applied = apply(settings)
    step("materialize")
    online = materialize(settings)
    return {
        "spark": spark,
        "apply": applied,
        "materialize": online,
        "seconds": round(time.perf_counter() - started, 3),
    }


@dataclass(frozen=True)
class _NoParams:
    pass


@dataclass(frozen=True)
class TrainingSetParams:
    out: str | None = None  # default: $AISLE_HOME/features/training/<service>.parquet
    service: str = "ranking"
    days: int | None = None
    limit: int = 200_000
    negatives: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.limit < 1 or self.negatives < 0 or (self.days is not None and self.days < 1):
            raise BadInput("--limit must be >= 1, --negatives >= 0 and --days >= 1")


def training_set(settings: Settings, params: Any = None) -> dict[str, Any]:
    """Point-in-time join of graded lake labels with Feast features, written as Parquet."""
    from feature_repo.labels import label_frame
    from feature_repo.training_sets import training_set as join

    p = parse_params(TrainingSetParams, params)
    started = time.perf_counter()
    labels = label_frame(settings, days=p.days, limit=p.limit, negatives=p.negatives, seed=p.seed)
    joined = join(settings, labels, feature_service=p.service)
    path = Path(p.out) if p.out else settings.paths.features / "training" / f"{p.service}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    joined.to_parquet(path, index=False)
    feature_cols = [c for c in joined.columns if "__" in c]
    return {
        "rows": len(joined),
        "positives": int((joined["label"] > 0).sum()),
        "negatives": int((joined["label"] == 0).sum()),
        "features": len(feature_cols),
        "null_share": round(float(joined[feature_cols].isna().mean().mean()), 4) if feature_cols else None,
        "service": p.service,
        "path": str(path),
        "seconds": round(time.perf_counter() - started, 3),
    }


@dataclass(frozen=True)
class OnlineParams:
    user_id: str = ""
    item_ids: tuple[str, ...] = ()


def online(settings: Settings, params: Any = None) -> dict[str, Any]:
    """One shopper's (and optionally some items') features as the online store holds them now."""
    from feature_repo.online import online_features

    p = parse_params(OnlineParams, params)
    if not p.user_id:
        raise BadInput("user_id is required")
    return online_features(settings, p.user_id, list(p.item_ids) or None)
