"""When monitoring asks for retraining, and the cool-down that stops one cause from asking in a loop.

Causes (each has a key; the cool-down is per key):

* ``drift:events``, ``drift:user_features``, ``drift:item_features`` — the dataset's drift test failed
  (at least ``AISLE_MONITOR_DRIFT_SHARE`` of its columns drifted). Served-score drift is reported but is
  not a cause: every new model version moves the scores, so it would retrain after each retraining.
* ``quality`` — hit rate or NDCG of a well-measured series fell by more than the tolerance.
* ``guardrail:<name>`` — latency p99, error share or degraded share above its limit.

A cause fires when it has not fired within ``AISLE_MONITOR_COOLDOWN_HOURS`` before the report's as-of
time (the data's clock, like the windows: a back-filled or replayed history obeys the same rule). A
cause is *held* instead when the current window failed a data-quality check (a constant or vanished
column): retraining on broken data would teach the model the breakage. All causes that fire together
start one retraining, with every reason in its conf.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

DRIFT_CAUSES: Final = ("events", "user_features", "item_features")
HISTORY: Final = 200


@dataclass(frozen=True)
class Cause:
    key: str
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    cause: Cause
    action: str  # retrain | cooldown | held
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "cause": self.cause.key,
            "action": self.action,
            "reason": self.cause.reason,
            "note": self.note,
            "evidence": self.cause.evidence,
        }


def detect(report: Mapping[str, Any]) -> list[Cause]:
    """The causes a report's summary holds (see the module doc)."""
    causes: list[Cause] = []
    drift = report.get("drift", {})
    for name in DRIFT_CAUSES:
        d = drift.get(name) or {}
        if d.get("drift_detected"):
            drifted = sorted(c for c, v in d.get("columns", {}).items() if v.get("drifted"))
            causes.append(
                Cause(
                    key=f"drift:{name}",
                    reason=f"{name} drifted: {d['drifted_columns']} of {len(d.get('columns', {}))} columns "
                    f"(share {d['drift_share']:.2f}) — {', '.join(drifted)}",
                    evidence={"drift_share": d["drift_share"], "columns": drifted},
                )
            )
    drops = (report.get("quality") or {}).get("drops") or []
    if drops:
        worst = min(drops, key=lambda d: d["relative_change"])
        causes.append(
            Cause(
                key="quality",
                reason=f"{worst['stat']} of {worst['series']} fell {-worst['relative_change']:.0%} "
                f"({worst['reference']:.4f} → {worst['current']:.4f})"
                + (f" and {len(drops) - 1} more" if len(drops) > 1 else ""),
                evidence={"drops": drops},
            )
        )
    for breach in (report.get("guardrails") or {}).get("breaches", []):
        causes.append(
            Cause(
                key=f"guardrail:{breach['guardrail']}",
                reason=f"{breach['guardrail']} {breach['value']:.4g} above its limit {breach['limit']:.4g}",
                evidence=dict(breach),
            )
        )
    return causes


def broken_data(report: Mapping[str, Any]) -> list[str]:
    """Data-quality failures of the current window in the tables retraining would learn from."""
    problems: list[str] = []
    for name in DRIFT_CAUSES:
        quality = ((report.get("drift", {}).get(name) or {}).get("data_quality")) or {}
        problems += [f"{name}: {f['problem']}" for f in quality.get("failures", [])]
    return problems


@contextmanager
def _locked(path: Path) -> Iterator[dict[str, Any]]:
    """The trigger state, read and written under an exclusive lock (two reports never both fire)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            state = json.loads(path.read_text()) if path.exists() else {}
            state.setdefault("fired", {})
            state.setdefault("history", [])
            yield state
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
            tmp.replace(path)
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def decide(
    causes: list[Cause], as_of: datetime, cooldown: timedelta, state_file: Path, held: list[str]
) -> list[Decision]:
    """Fire, cool down or hold each cause; record fired ones (and every decision) in the state file."""
    decisions: list[Decision] = []
    with _locked(state_file) as state:
        for cause in causes:
            last = state["fired"].get(cause.key)
            last_at = datetime.fromisoformat(last) if last else None
            if held:
                decisions.append(Decision(cause, "held", "data quality failed: " + "; ".join(held)))
            elif last_at is not None and as_of - last_at < cooldown:
                until = last_at + cooldown
                decisions.append(
                    Decision(
                        cause,
                        "cooldown",
                        f"fired at {last_at.isoformat()}; cooling down until {until.isoformat()}",
                    )
                )
            else:
                state["fired"][cause.key] = as_of.isoformat()
                decisions.append(Decision(cause, "retrain"))
        for d in decisions:
            state["history"].append(
                {"as_of": as_of.isoformat(), **asdict(d.cause), "action": d.action, "note": d.note}
            )
        state["history"] = state["history"][-HISTORY:]
    return decisions


def retrain_reason(decisions: list[Decision]) -> str | None:
    """The one reason a retraining carries (every firing cause, joined), or None if nothing fired."""
    fired = [d.cause.reason for d in decisions if d.action == "retrain"]
    return "monitor: " + " | ".join(fired) if fired else None
