"""One way to serialise work across processes on one `$AISLE_HOME`: an exclusive `flock` on a file.

Two `aisle services up`, two `aisle ui`, two monitoring reports or two ingest jobs may run at once; each
piece of state they share is read and written under its own lock file. `flock` locks die with their
process, so a killed job never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created, with its folder, when missing) for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
