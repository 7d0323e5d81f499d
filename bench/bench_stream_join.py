"""The stream consumer's two waits that a user sees: joining its group, and replaying after a kill -9.

* Time from consumer start to its first partition assignment (``assigned_after_s`` of the stream
  summary), idle and with a busy process on every core. Each trial is a new group on a new topic, as
  for a first `aisle ingest stream`; on Tansu the first join takes about half the session timeout.
* Replay cost after ``kill -9``: an `aisle ingest stream` process is killed mid-stream; a new consumer
  in the same group resumes. The cost is the events read twice (recognised by the lake and counted as
  duplicates, never written twice) and the time the resumed consumer needs to catch up.

    python bench/bench_stream_join.py [--trials 3]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import busy_cores, report

from aisle.app.services import embedded_services
from aisle.core.settings import Settings, load_settings
from ingestion.lake import EventLake
from ingestion.pipeline import Ingester
from ingestion.stream import StopFlag, consume_stream, events_to_json_lines, produce_messages
from ingestion.synthetic.shop import ShopConfig, generate_shop


def fresh(settings: Settings, home: Path, **more: object) -> Settings:
    tag = uuid.uuid4().hex[:8]
    return settings.model_copy(
        update={"home": home, "events_topic": f"t-{tag}", "consumer_group": f"g-{tag}", **more}
    )


def join_times(base: Settings, root: Path, trials: int, line: bytes) -> None:
    for mode in ("idle", "busy"):
        seconds = []
        with busy_cores(mode == "busy"):
            load = os.getloadavg()[0]
            for k in range(trials):
                settings = fresh(base, root / f"join-{mode}-{k}")
                produce_messages(settings, [line])
                summary = consume_stream(settings, max_events=1, max_seconds=120)
                seconds.append(summary["assigned_after_s"])
        report("stream_first_assignment", mode=mode, trials=trials, seconds=seconds,
               mean_s=round(sum(seconds) / len(seconds), 2), max_s=max(seconds),
               session_timeout_ms=6000, load_average=round(load, 2))  # fmt: skip


def replay_cost(base: Settings, root: Path, lines: list[bytes], batch: int) -> None:
    settings = fresh(base, root / "replay", micro_batch_max_events=batch)
    Ingester(settings).ingest_catalog(CATALOG, "catalog")
    produce_messages(settings, lines)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AISLE_")}
    env.update(AISLE_HOME=str(settings.paths.home), AISLE_KAFKA_BOOTSTRAP=str(settings.kafka_bootstrap),
               AISLE_EVENTS_TOPIC=settings.events_topic, AISLE_CONSUMER_GROUP=settings.consumer_group,
               AISLE_MICRO_BATCH_MAX_EVENTS=str(batch))  # fmt: skip
    lake = EventLake(settings.paths.lake)
    proc = subprocess.Popen([sys.executable, "-m", "aisle.app.cli", "ingest", "stream", "--no-push-features"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    while lake.count() < len(lines) * 0.3 and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    at_kill = lake.count()
    stop = StopFlag()

    def full(_totals: object) -> None:
        if lake.count() >= len(lines):
            stop.event.set()

    started = time.perf_counter()
    resumed = consume_stream(settings, stop=stop, max_seconds=300, progress=full)
    seconds = round(time.perf_counter() - started, 2)
    report("stream_replay_after_kill9", events=len(lines), micro_batch=batch, in_lake_at_kill=at_kill,
           replayed_events=resumed["duplicates"], replayed_batches=round(resumed["duplicates"] / batch, 2),
           resume_seconds=seconds, assigned_after_s=resumed["assigned_after_s"],
           lake_exact=lake.count() == len(lines), load_average=round(os.getloadavg()[0], 2))  # fmt: skip


CATALOG = None


def main() -> None:
    global CATALOG
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    shop = generate_shop(ShopConfig(users=4_000, items=300, days=20, seed=4))
    CATALOG = shop.catalog
    lines = events_to_json_lines(shop.events.sort_by("ts"))[:20_000]
    with tempfile.TemporaryDirectory() as tmp:
        owner = load_settings(
            home=Path(tmp) / "owner", profile="embedded", redis_url=None, kafka_bootstrap=None
        )
        with embedded_services(owner, redis=False) as up:
            base = owner.model_copy(update={"kafka_bootstrap": up["kafka"]["bootstrap"]})
            join_times(base, Path(tmp), args.trials, lines[0])
            replay_cost(base, Path(tmp), lines, batch=2_000)


if __name__ == "__main__":
    main()
