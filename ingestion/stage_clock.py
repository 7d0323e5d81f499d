"""Where a micro-batch's time goes, stage by stage, so a latency fix goes where the time is.

The stream records, for each micro-batch, the seconds spent in each stage (from the broker's timestamp
of its first event to the push of its shoppers' features) and reports p50 / p99 / mean per stage in its
summary (``stage_ms``). The last ``KEEP`` batches are kept.
"""

from __future__ import annotations

from collections import deque
from typing import Final

import numpy as np

#: In the order an event meets them.
STAGES: Final = (
    "fetch",  # producer's timestamp → the consumer has the record (broker, fetch, client)
    "wait",  # first record received → the micro-batch closes
    "read",  # messages → rows
    "parse",
    "gate",  # the expectation suite (Arrow or Great Expectations) and the verdicts
    "lake",  # write + fsync of the good rows
    "quarantine",
    "commit",  # the offset commit
    "fold",  # stream features: fold the good rows into shoppers' state
    "push",  # stream features: push to the online store
)
KEEP: Final = 10_000


class StageClock:
    def __init__(self) -> None:
        self.batches: deque[dict[str, float]] = deque(maxlen=KEEP)

    def record(self, seconds: dict[str, float]) -> None:
        self.batches.append(seconds)

    def summary(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for stage in STAGES:
            values = np.array([b[stage] for b in self.batches if stage in b]) * 1000
            if len(values):
                out[stage] = {
                    "p50": round(float(np.percentile(values, 50)), 2),
                    "p99": round(float(np.percentile(values, 99)), 2),
                    "mean": round(float(values.mean()), 2),
                }
        return out
