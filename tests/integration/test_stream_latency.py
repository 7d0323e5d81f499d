"""The stream's latency levers keep what makes it trustworthy: the feature hook (run on a worker thread
so the push overlaps the next poll) only ever sees validated rows that are already durable in the lake,
sees every batch in order, and its failure stops the consumer; the summary says where the time went."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from aisle.app import services
from aisle.core.errors import BadInput
from aisle.core.settings import Settings, load_settings
from ingestion.lake import EventLake
from ingestion.stage_clock import STAGES
from ingestion.stream import consume_stream, events_to_json_lines, produce_messages
from ingestion.synthetic.shop import ShopConfig, generate_shop

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    owner = load_settings(home=tmp_path_factory.mktemp("latency"), profile="embedded", redis_url=None)
    with services.embedded_services(owner, redis=False) as up:
        yield str(up["kafka"]["bootstrap"])


def settings_on(home: Path, broker: str, **more: object) -> Settings:
    tag = uuid.uuid4().hex[:8]
    return load_settings(home=home, profile="embedded", redis_url=None, kafka_bootstrap=broker,
                         events_topic=f"lat-{tag}", consumer_group=f"lat-{tag}", **more)  # fmt: skip


@pytest.mark.parametrize("overlap", [True, False])
def test_the_hook_sees_only_durable_validated_rows_in_order(
    tmp_path: Path, broker: str, overlap: bool
) -> None:
    settings = settings_on(tmp_path / "home", broker, stream_overlap_push=overlap, micro_batch_max_events=50)
    events = generate_shop(ShopConfig(users=200, items=40, days=3, seed=2)).events.sort_by("ts").slice(0, 300)
    lines = events_to_json_lines(events)
    bad = [json.dumps({**json.loads(lines[0]), "event_id": f"bad-{k}", "event_type": "teleport"}).encode()
           for k in range(3)]  # fmt: skip
    produce_messages(settings, lines[:150] + bad + lines[150:])
    lake = EventLake(settings.paths.lake)
    seen: list[str] = []

    def hook(good: pa.Table) -> None:
        ids = good["event_id"].to_pylist()
        stored = set(EventLake(settings.paths.lake).read()["event_id"].to_pylist())
        assert set(ids) <= stored  # durable before anyone online can see it
        assert not [i for i in ids if i.startswith("bad-")]
        seen.extend(ids)

    summary = consume_stream(settings, max_events=303, max_seconds=60, on_batch=hook)
    assert summary["ok"] and summary["accepted"] == 300 and summary["quarantined"] == 3
    assert sorted(seen) == sorted(lake.read()["event_id"].to_pylist())
    assert set(summary["stage_ms"]) == set(STAGES) - {"fold"}  # a plain hook reports its time as push
    assert summary["stage_ms"]["gate"]["p50"] >= 0


def test_a_failing_hook_stops_the_consumer(tmp_path: Path, broker: str) -> None:
    settings = settings_on(tmp_path / "home", broker, stream_overlap_push=True)
    produce_messages(
        settings, events_to_json_lines(generate_shop(ShopConfig(users=20, items=10, days=1)).events)
    )

    def broken(_good: pa.Table) -> None:
        raise RuntimeError("the online store exploded")

    with pytest.raises(RuntimeError, match="exploded"):
        consume_stream(settings, max_seconds=30, idle_exit_seconds=2, on_batch=broken)


def test_the_latency_budget_is_checked(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home", kafka_bootstrap="127.0.0.1:1")
    with pytest.raises(BadInput, match="--latency-budget-ms must be positive"):
        consume_stream(settings, max_seconds=1, latency_budget_ms=0)
