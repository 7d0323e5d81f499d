"""`aisle ingest status`: the consumer group, its members, what was produced and committed, and the lag.

Committed offsets come from the broker (OffsetFetch, which Tansu answers correctly) and fall back to the
ledger; produced positions come from the ledger (:mod:`ingestion.ledger`), because Tansu's ListOffsets
answer is wrong. The lag is produced minus committed. Members come from the broker's DescribeGroups where
it answers (Apache Kafka), else from the member files running consumers keep. Dead letters are the
messages of this topic in the quarantine.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pyarrow.compute as pc
import pyarrow.dataset as ds

from aisle.core.endpoints import is_alive, kafka_bootstrap
from aisle.core.errors import ServiceUnavailable
from aisle.core.settings import Settings
from ingestion.kafka_io import broker_reachable
from ingestion.lake import Quarantine
from ingestion.ledger import Ledger


def stream_status(settings: Settings, group: str | None = None) -> dict[str, Any]:
    topic = settings.events_topic
    group = group or settings.consumer_group
    ledger = Ledger(settings)
    produced = ledger.produced(topic)
    committed = ledger.committed(group, topic)
    bootstrap: str | None = None
    broker_ok, source = False, "local member files"
    members: list[dict[str, Any]] | None = []
    with contextlib.suppress(ServiceUnavailable):
        bootstrap = kafka_bootstrap(settings)
    if bootstrap and broker_reachable(bootstrap):
        broker_ok = True
        from_broker = _broker_committed(bootstrap, group, topic)
        committed = {**committed, **{p: n for p, n in from_broker.items() if n is not None}}
        members = _broker_members(bootstrap, group)
        if members is not None:
            source = "broker"
    if not members:
        members = _local_members(settings, group, topic)
        source = "local member files"
    partitions = sorted(set(produced) | set(committed))
    rows = [
        {
            "partition": p,
            "produced": produced.get(p),
            "committed": committed.get(p, 0),
            "lag": None if p not in produced else max(produced[p] - committed.get(p, 0), 0),
        }
        for p in partitions
    ]
    known = [r["lag"] for r in rows if r["lag"] is not None]
    return {
        "ok": broker_ok,
        "problem": None if broker_ok else f"no broker answers at {bootstrap or '(none configured)'}",
        "topic": topic,
        "group": group,
        "bootstrap": bootstrap,
        "members": members or [],
        "members_from": source,
        "partitions": rows,
        "lag": sum(known) if produced else None,
        "lag_note": None if produced else "no production recorded by aisle producers for this broker",
        "dead_letters": dead_letters(settings, topic),
        "lost_in_broker_restart": ledger.lost_in_restart(group, topic),
    }


def dead_letters(settings: Settings, topic: str) -> int:
    store = Quarantine(settings.paths.quarantine, "events")
    parts = store.parts()
    if not parts:
        return 0
    table = ds.dataset(parts, format="parquet").to_table(columns=["source"])
    return int(pc.sum(pc.equal(table["source"], f"kafka:{topic}")).as_py() or 0)


def _broker_committed(bootstrap: str, group: str, topic: str) -> dict[int, int | None]:
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError
    from kafka.structs import TopicPartition

    try:
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False, request_timeout_ms=5000
        )
    except KafkaError:
        return {}
    try:
        out: dict[int, int | None] = {}
        for p in sorted(consumer.partitions_for_topic(topic) or ()):
            out[p] = consumer.committed(TopicPartition(topic, p))
        return out
    except KafkaError:
        return {}
    finally:
        consumer.close()


def _broker_members(bootstrap: str, group: str) -> list[dict[str, Any]] | None:
    """Members by DescribeGroups; None when the broker does not answer it (Tansu)."""
    from kafka import KafkaAdminClient

    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    except Exception:
        return None
    try:
        described = admin.describe_groups([group])
        found = []
        for g in described or ():
            for m in getattr(g, "members", None) or ():
                fields = {"member": "member_id", "client": "client_id", "host": "client_host"}
                found.append({name: getattr(m, attr, None) for name, attr in fields.items()})
        return found
    except Exception:  # Tansu fails describe calls; the local files are the fallback
        return None
    finally:
        admin.close()


def _local_members(settings: Settings, group: str, topic: str) -> list[dict[str, Any]]:
    out = []
    for path in sorted((settings.paths.run / "consumers").glob("*.json")):
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if info.get("group") != group or info.get("topic") != topic:
            continue
        if not is_alive(int(info.get("pid", 0))):
            path.unlink(missing_ok=True)  # a consumer killed with -9 leaves its file behind
            continue
        out.append({k: info.get(k) for k in ("pid", "host", "partitions", "bootstrap")})
    return out
