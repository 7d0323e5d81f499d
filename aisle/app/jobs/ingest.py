"""Jobs: events into the lake (files, the Kafka stream, a shop's own history) and events into Kafka."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aisle.app.jobs import Step, finish, no_step, parse_params
from aisle.core.errors import BadInput
from aisle.core.schemas import EVENT_TYPES
from aisle.core.settings import Settings


@dataclass(frozen=True)
class BatchParams:
    sources: tuple[str, ...] = ()  # files or directories; empty = $AISLE_HOME/raw/shop
    kind: str | None = None  # events, catalog or users for every file; None: told by each file's columns

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources", tuple(str(s) for s in self.sources))


def batch(
    settings: Settings, params: Any = None, *, progress: Callable[[str, int], None] | None = None
) -> dict[str, Any]:
    """Validate files (or directories of them) into the lake; bad rows go to quarantine with a reason."""
    from ingestion.batch import ingest_batch

    p = parse_params(BatchParams, params)
    sources = [Path(s) for s in p.sources] or [settings.paths.raw / "shop"]
    return finish("ingest.batch", ingest_batch(settings, sources, progress=progress, kind=p.kind))


@dataclass(frozen=True)
class StreamParams:
    max_seconds: float | None = None
    max_events: int | None = None
    idle_seconds: float | None = None
    push_features: bool = True
    latency_budget_ms: float | None = None  # default: AISLE_STREAM_LATENCY_BUDGET_MS


def stop_on_signals() -> Any:
    """A stop flag that SIGTERM/SIGINT set: the stream finishes its micro-batch, commits and returns."""
    from ingestion.stream import StopFlag

    stop = StopFlag()
    stop.install_signal_handlers()
    return stop


def stream(
    settings: Settings,
    params: Any = None,
    *,
    stop: Any = None,
    progress: Callable[[Any], None] | None = None,
) -> dict[str, Any]:
    """Consume the events topic into the lake and push each shopper's stream features online.

    The same function serves `aisle ingest stream` and the `ingest_events` DAG, so both push the stream
    features the same way (unless ``push_features`` is off).
    """
    from feature_repo.stream_features import StreamFeaturePusher
    from ingestion.stream import consume_stream

    p = parse_params(StreamParams, params)
    pusher = StreamFeaturePusher(settings) if p.push_features else None
    if pusher is not None:
        _warm_online_store(settings)
    summary = consume_stream(
        settings,
        max_seconds=p.max_seconds,
        max_events=p.max_events,
        idle_exit_seconds=p.idle_seconds,
        latency_budget_ms=p.latency_budget_ms,
        stop=stop,
        progress=progress,
        on_batch=pusher,
    )
    if pusher is not None:
        summary["stream_features"] = pusher.summary()
    return finish("ingest.stream", summary)


def _warm_online_store(settings: Settings) -> None:
    """Build the Feast client before the first micro-batch (seconds of registry loading on a busy
    machine), so the first shoppers' features are not late by that much. A store that is not ready yet
    is the pusher's business: it retries with each batch."""
    import contextlib

    from feature_repo.store import get_store

    with contextlib.suppress(Exception):
        get_store(settings)


@dataclass(frozen=True)
class ProduceParams:
    path: str | None = None  # default: the generated shop's events
    rate: float | None = None
    limit: int | None = None
    offset: int = 0


def produce(
    settings: Settings, params: Any = None, *, progress: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Replay an event file into the Kafka events topic, in time order, optionally paced."""
    from ingestion.stream import stream_file

    p = parse_params(ProduceParams, params)
    source = Path(p.path) if p.path else settings.paths.raw / "shop" / "events.parquet"
    if not source.exists():
        raise BadInput(f"{source}: no such file; run `aisle data generate` first or pass --path")
    summary = stream_file(settings, source, rate=p.rate, limit=p.limit, offset=p.offset, progress=progress)
    return finish("data.stream", summary)


def status(settings: Settings, params: Any = None) -> dict[str, Any]:
    """The stream's consumer group: members, produced and committed positions, lag, dead letters."""
    from ingestion.status import stream_status

    group = dict(params or {}).get("group")
    return finish("ingest.status", stream_status(settings, group))


@dataclass(frozen=True)
class ImportParams:
    interactions: str = ""
    catalog: str | None = None
    event_type: str = "view"
    dry_run: bool = False  # show the mapping and what would be refused; write nothing

    def __post_init__(self) -> None:
        if not self.interactions:
            raise BadInput("--interactions is required: a CSV or Parquet file of user_id,item_id,timestamp")
        if self.event_type not in EVENT_TYPES:
            raise BadInput(f"--event-type must be one of {', '.join(EVENT_TYPES)} (got {self.event_type!r})")


def import_history(settings: Settings, params: Any = None) -> dict[str, Any]:
    """A shop's own interaction history through the same gate as everything else (idempotent).

    A dry run fails (exit 1) exactly when the import would, so it can guard a script."""
    from ingestion.importing import import_history as run_import

    p = parse_params(ImportParams, params)
    summary = run_import(
        settings,
        Path(p.interactions),
        Path(p.catalog) if p.catalog else None,
        default_event_type=p.event_type,
        dry_run=p.dry_run,
    )
    return finish("data.import", summary)


#: A few broken messages, as any real producer sends now and then: the gate must quarantine them.
BROKEN_MESSAGES = (
    b'{"event_id": "demo-bad-1", "event_type": "view", "user_id": ',
    b'{"event_id": "demo-bad-2", "event_type": "teleport", "user_id": "u1", "item_id": "i1",'
    b' "ts": "2026-01-06T10:00:00Z"}',
    b'{"event_id": "demo-bad-3", "event_type": "rating", "value": 9, "user_id": "u1", "item_id": "i1",'
    b' "ts": "2026-01-06T10:00:00Z"}',
)


@dataclass(frozen=True)
class ReplayParams:
    shop_dir: str | None = None  # default: $AISLE_HOME/raw/shop
    stream_fraction: float = 0.2
    idle_seconds: float = 3.0
    max_seconds: float = 300.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.stream_fraction <= 1.0:
            raise BadInput(f"stream_fraction must be within [0, 1] (got {self.stream_fraction})")


#: The progress stages of ``replay_shop``.
REPLAY_STAGES = ("batch files", "produce to Kafka", "consume from Kafka")


def replay_shop(settings: Settings, params: Any = None, *, progress: Step | None = None) -> dict[str, Any]:
    """History from files, the most recent events live through Kafka: the split a real shop has.

    The older share of a shop's events is ingested as a batch file; the newest ``stream_fraction`` is
    produced to Kafka, followed by a few broken messages, and consumed.
    """
    import pyarrow.parquet as pq

    from ingestion.stream import produce_messages, stream_events
    from ingestion.synthetic.shop import write_events

    p = parse_params(ReplayParams, params)
    step = progress or no_step
    shop_dir = Path(p.shop_dir) if p.shop_dir else settings.paths.raw / "shop"
    events = pq.read_table(shop_dir / "events.parquet").sort_by("ts")
    cut = int(events.num_rows * (1.0 - p.stream_fraction))
    history = settings.paths.raw / "history" / "events-history.parquet"
    history.parent.mkdir(parents=True, exist_ok=True)
    write_events(events.slice(0, cut), history)
    started = time.perf_counter()
    step(REPLAY_STAGES[0])
    files = batch(
        settings,
        BatchParams(
            sources=(str(shop_dir / "catalog.parquet"), str(shop_dir / "users.parquet"), str(history))
        ),
    )
    step(REPLAY_STAGES[1])
    produced = finish("data.stream", stream_events(settings, events.slice(cut)))
    broken = finish("data.stream", produce_messages(settings, list(BROKEN_MESSAGES)))
    sent = produced["produced"] + broken["produced"]
    step(REPLAY_STAGES[2])
    # no push: the Feast repo is applied by the features stage that follows a replay
    consumed = stream(
        settings,
        StreamParams(
            max_events=sent, idle_seconds=p.idle_seconds, max_seconds=p.max_seconds, push_features=False
        ),
    )
    summary = {
        "batch": files,
        "produced": produced,
        "stream": consumed,
        "seconds": round(time.perf_counter() - started, 3),
    }
    return finish("ingest.replay", reconcile_stream(settings, summary, sent))


def reconcile_stream(settings: Settings, summary: dict[str, Any], sent: int) -> dict[str, Any]:
    """A job that produced and then consumed checks that the consumer read what was sent (quarantined
    messages included) and that the ledger shows no lag left; otherwise it fails with the numbers."""
    from ingestion.ledger import Ledger

    read = summary["stream"]["read"]
    left = Ledger(settings).unconsumed(settings.consumer_group, settings.events_topic)
    ok = read == sent and not left
    summary.update(ok=ok, sent=sent)
    if not ok:
        summary["problem"] = (
            f"the stream read {read:,} of the {sent:,} messages sent (accepted "
            f"{summary['stream']['accepted']:,}, quarantined {summary['stream']['quarantined']:,}); "
            f"{left if left is not None else 'unknown'} left unconsumed in group {settings.consumer_group}"
        )
    return summary
