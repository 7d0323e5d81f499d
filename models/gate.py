"""The quality gate that guards ``champion``: metrics against references, and behavioural checks.

Pure functions over per-user metric frames and a ``recommend`` callable; MLflow never enters here
(``models.registry`` records the decision).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from models.evaluation import paired_bootstrap_ci

GATE_METRIC = "ndcg@10"


@dataclass
class GateDecision:
    """What the gate decided and why, in words a person can act on."""

    passed: bool
    reasons: list[str] = field(default_factory=list)
    comparisons: dict[str, dict[str, float]] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def quality_gate(
    challenger: pd.DataFrame,
    references: Mapping[str, pd.DataFrame],
    checks: Mapping[str, bool],
    metric: str = GATE_METRIC,
    n_boot: int = 1000,
    seed: int = 0,
) -> GateDecision:
    """Refuse if the challenger is worse than any reference beyond the paired 95% bootstrap interval
    (the interval of mean(challenger - reference) over the same test users lies wholly below zero), or
    if any behavioural check failed.

    ``challenger`` and each reference are per-user frames (``user_id`` + the metric column) from the
    same split; users are aligned by id, so a reference evaluated on a different user set is refused
    rather than compared unfairly.
    """
    decision = GateDecision(passed=True, checks=dict(checks))
    base = challenger.set_index("user_id")[metric]
    for name, frame in references.items():
        other = frame.set_index("user_id")[metric]
        common = base.index.intersection(other.index)
        if len(common) == 0 or len(common) < 0.9 * len(base):
            decision.passed = False
            decision.reasons.append(f"{name}: evaluated on different users, cannot compare")
            continue
        a, b = base.loc[common].to_numpy(), other.loc[common].to_numpy()
        lo, hi = paired_bootstrap_ci(a, b, n=n_boot, seed=seed)
        diff = float(np.mean(a - b))
        decision.comparisons[name] = {
            "challenger": float(a.mean()),
            name: float(b.mean()),
            "diff": diff,
            "ci_lo": lo,
            "ci_hi": hi,
            "users": float(len(common)),
        }
        if hi < 0:
            decision.passed = False
            decision.reasons.append(
                f"worse than {name} on {metric}: {a.mean():.4f} vs {b.mean():.4f} "
                f"(difference {diff:+.4f}, 95% CI [{lo:+.4f}, {hi:+.4f}] entirely below zero)"
            )
    for check, ok in checks.items():
        if not ok:
            decision.passed = False
            decision.reasons.append(f"behavioural check failed: {check}")
    return decision


def behavioural_checks(
    recommend: Callable[[list[str], int], dict[str, list[str]]],
    users: Sequence[str],
    seen: Mapping[str, set[str]],
    catalog_items: set[str],
    k: int = 10,
) -> dict[str, bool]:
    """Properties any policy must have, whatever its metrics: checked on real users and a made-up one.

    ``recommend(users, k)`` must exclude seen items. The unknown user proves cold start answers rather
    than failing; asking twice proves the answer is deterministic.
    """
    probe = [*users, "__gate_unknown_user__"]
    first = recommend(probe, k)
    second = recommend(probe, k)
    full = min(k, len(catalog_items))
    lists = [first.get(u, []) for u in probe]
    return {
        "no_seen_items": all(not (set(first.get(u, [])) & seen.get(u, set())) for u in probe),
        "no_duplicates": all(len(items) == len(set(items)) for items in lists),
        "items_in_catalog": all(set(items) <= catalog_items for items in lists),
        "full_lists": all(
            len(first.get(u, [])) >= min(full, len(catalog_items - seen.get(u, set()))) for u in probe
        ),
        "cold_start_answers": len(first.get("__gate_unknown_user__", [])) == full,
        "deterministic": all(first.get(u) == second.get(u) for u in probe),
    }
