"""The small JSON files the supervisors keep under ``$AISLE_HOME`` (pids, ports, logins): written
atomically, so a reader in another process never sees half a file, and read forgivingly, so a missing
or damaged file means "nothing recorded" rather than a crash."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_json(path: Path, data: dict[str, Any], *, private: bool = False) -> None:
    """Replace ``path`` with ``data``; ``private`` files (passwords, secrets) are readable by us only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
