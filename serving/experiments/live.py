"""The running experiments as one service worker sees them: a snapshot, refreshed off the request path.

The service asks ``LiveExperiments.assigner`` on every request (memory only); its refresher calls
:meth:`refresh` every few seconds, which reads the store once and builds a new :class:`Assigner` only
when something started or stopped. If the store cannot be read, the snapshot in force stays (assignment
must not depend on a database answering), and the failure is reported once.
"""

from __future__ import annotations

import logging
from typing import Any

from aisle.core.errors import AisleError
from aisle.core.settings import Settings
from serving.experiments.assignment import Assigner
from serving.experiments.store import Experiment, ExperimentStore

log = logging.getLogger("bentoml.aisle.experiments")


def _signature(running: list[Experiment]) -> tuple[tuple[Any, ...], ...]:
    return tuple((e.id, e.key, e.version, e.salt, e.bucket_lo, e.bucket_hi) for e in running)


class LiveExperiments:
    def __init__(self, settings: Settings) -> None:
        from serving.experiments.api import open_store

        self._settings = settings
        self._open = open_store
        self._store: ExperimentStore | None = None
        self.assigner = Assigner([])
        self.running: list[Experiment] = []
        self._signature: tuple[tuple[Any, ...], ...] = ()
        self.last_error: str | None = None

    def refresh(self) -> bool:
        """Read the running experiments; True when the snapshot changed."""
        try:
            if self._store is None:
                self._store = self._open(self._settings)
            running = self._store.running()
        except AisleError as exc:
            if str(exc) != self.last_error:
                log.warning("experiment store unreadable, assignments stay as they were: %s", exc)
            self.last_error = str(exc)
            return False
        if self.last_error is not None:
            log.info("experiment store readable again")
            self.last_error = None
        signature = _signature(running)
        if signature == self._signature:
            return False
        self.assigner = Assigner(running)
        self.running = running
        self._signature = signature
        log.info("running experiments: %s", ", ".join(f"{e.key} v{e.version}" for e in running) or "none")
        return True

    @property
    def aliases(self) -> set[str]:
        """Model aliases the running variants serve: the service keeps one policy loaded for each."""
        return self.assigner.aliases

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
