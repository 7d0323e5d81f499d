"""How a DAG run's reason is told (aisle.app.jobs.tasks.run_reason), from the run's own facts."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import pytest

from aisle.app.jobs.tasks import _json_type, reason_text, run_reason


class RunType(Enum):  # the task SDK's enum has a value but no useful str()
    MANUAL = "manual"
    SCHEDULED = "scheduled"
    ASSET = "asset_triggered"


@dataclass
class Run:
    run_type: RunType
    run_id: str = "r1"
    conf: dict[str, Any] = field(default_factory=dict)
    triggering_user_name: str | None = None


@dataclass
class Event:
    source_dag_id: str | None
    source_run_id: str | None
    extra: dict[str, Any]


@dataclass(frozen=True)
class Asset:
    name: str


def test_manual_without_a_reason() -> None:
    reason = run_reason({"dag_run": Run(RunType.MANUAL, triggering_user_name="admin")})
    assert reason["kind"] == "manual" and "admin" in reason["detail"]


def test_a_stated_reason_makes_a_trigger() -> None:
    run = Run(RunType.MANUAL, conf={"reason": "drift: share 0.4 > 0.3"}, triggering_user_name="admin")
    reason = run_reason({"dag_run": run})
    assert reason_text(reason) == "trigger: drift: share 0.4 > 0.3"


def test_asset_events_name_their_source() -> None:
    events = {
        Asset("aisle_event_lake"): [
            Event("ingest_events", "run-7", {"accepted": 10}),
            Event(None, None, {"source": "stream"}),
        ]
    }
    reason = run_reason({"dag_run": Run(RunType.ASSET), "triggering_asset_events": events})
    assert reason["kind"] == "asset"
    assert reason["detail"] == (
        "aisle_event_lake from ingest_events/run-7; aisle_event_lake from outside Airflow (REST API)"
    )
    assert reason["events"][0]["extra"] == {"accepted": 10}


def test_schedule_and_test_runs() -> None:
    assert run_reason({"dag_run": Run(RunType.SCHEDULED)})["kind"] == "schedule"
    assert run_reason({"dag_run": Run(RunType.MANUAL, triggering_user_name="dag_test")})["kind"] == "test"


@pytest.mark.parametrize(
    ("annotation", "kinds", "extra"),
    [
        (int, ["integer"], {}),
        (float | None, ["number", "null"], {}),
        (tuple[str, ...], ["array"], {"items": {"type": "string"}}),
        (bool, ["boolean"], {}),
        (str | None, ["string", "null"], {}),
    ],
)
def test_param_types_follow_the_annotations(annotation: Any, kinds: list[str], extra: dict[str, Any]) -> None:
    assert _json_type(annotation) == (kinds, extra)
