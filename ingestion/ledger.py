"""Our own account of the topic: what the producers had acknowledged and what each group committed.

Tansu's "latest offset" answer (ListOffsets) is wrong and its admin describe calls fail, so lag cannot
come from the broker. Producers record, per partition, the offset after the last message the broker
acknowledged; consumers record each offset they commit. Lag is produced minus committed, from this file
alone: ``aisle ingest status`` shows it, ``aisle services down`` warns with it before the in-memory broker
forgets what it holds, and a bounded consumer uses it to tell "idle" from "not caught up yet".

Entries belong to one broker *epoch* (the embedded broker's pid and start time, or the external bootstrap
address): a restarted memory broker starts its offsets at 0 again, so the previous epoch's account is kept
as ``previous`` to say how many events the restart lost, and a new one begins.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from aisle.core.endpoints import read_state
from aisle.core.settings import Settings

Positions = dict[int, int]  # partition → next offset


def broker_epoch(settings: Settings) -> str:
    """Which broker incarnation offsets refer to."""
    if settings.kafka_bootstrap:
        return f"external {settings.kafka_bootstrap}"
    kafka = read_state(settings).get("kafka") or {}
    return f"embedded pid {kafka.get('pid')} started {kafka.get('started_at')}"


class Ledger:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.path: Path = settings.paths.run / "kafka-ledger.json"

    # --- reading
    def load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def current(self) -> dict[str, Any]:
        """This epoch's account: ``{"produced": {topic: {p: n}}, "committed": {group: {topic: {p: n}}}}``."""
        data = self.load()
        if data.get("epoch") != broker_epoch(self.settings):
            return {"produced": {}, "committed": {}}
        return data

    def produced(self, topic: str) -> Positions:
        return _positions(self.current().get("produced", {}).get(topic, {}))

    def committed(self, group: str, topic: str) -> Positions:
        return _positions(self.current().get("committed", {}).get(group, {}).get(topic, {}))

    def groups(self, topic: str) -> list[str]:
        return sorted(g for g, topics in self.current().get("committed", {}).items() if topic in topics)

    def unconsumed(self, group: str, topic: str) -> int | None:
        """Events produced but not committed by ``group`` (None: the ledger knows no production)."""
        produced = self.produced(topic)
        if not produced:
            return None
        committed = self.committed(group, topic)
        return sum(max(n - committed.get(p, 0), 0) for p, n in produced.items())

    def lost_in_restart(self, group: str, topic: str) -> int:
        """Events the previous broker epoch held that ``group`` had not committed when it went away."""
        previous = self.load().get("previous") or {}
        produced = _positions(previous.get("produced", {}).get(topic, {}))
        committed = _positions(previous.get("committed", {}).get(group, {}).get(topic, {}))
        return sum(max(n - committed.get(p, 0), 0) for p, n in produced.items())

    def take_lost(self, group: str, topic: str) -> int:
        """:meth:`lost_in_restart`, once per group: the first consumer of the group after a restart
        reports the loss, later runs do not report it again."""
        previous = self.load().get("previous") or {}
        if group in previous.get("reported", {}).get(topic, []):
            return 0
        lost = self.lost_in_restart(group, topic)
        if lost:
            self._update(
                lambda data: (
                    (data.get("previous") or {})
                    .setdefault("reported", {})
                    .setdefault(topic, [])
                    .append(group)
                )
            )
        return lost

    # --- writing
    def roll(self) -> None:
        """Open the current broker epoch if the file still describes an older one."""
        if self.load().get("epoch") != broker_epoch(self.settings):
            self._update(lambda data: None)

    def record_produced(self, topic: str, positions: Positions) -> None:
        self._update(lambda data: _raise(data.setdefault("produced", {}).setdefault(topic, {}), positions))

    def record_committed(self, group: str, topic: str, positions: Positions) -> None:
        self._update(
            lambda data: _raise(
                data.setdefault("committed", {}).setdefault(group, {}).setdefault(topic, {}), positions
            )
        )

    def _update(self, change: Any) -> None:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a+") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                data = self.load()
                epoch = broker_epoch(self.settings)
                if data.get("epoch") != epoch:
                    previous = {k: data[k] for k in ("epoch", "produced", "committed") if k in data}
                    data = {"epoch": epoch, "previous": previous or data.get("previous")}
                change(data)
                tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
                os.replace(tmp, self.path)
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _positions(raw: dict[str, Any]) -> Positions:
    return {int(p): int(n) for p, n in raw.items()}


def _raise(stored: dict[str, int], positions: Positions) -> None:
    """Positions only move forward (a replayed commit or a late acknowledgement must not move them back)."""
    for partition, offset in positions.items():
        key = str(partition)
        stored[key] = max(int(stored.get(key, 0)), int(offset))
