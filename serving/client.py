"""A small JSON-over-HTTP client for the service (the deploy DAG, the demo, the benchmark's checks).

Standard library only, so calling the service needs nothing the caller does not already have.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from aisle.core.errors import ServiceUnavailable


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    headers: dict[str, str]


def call(
    base_url: str,
    path: str,
    body: Any | None = None,
    *,
    token: str | None = None,
    method: str | None = None,
    timeout_s: float = 30.0,
) -> Reply:
    """One request; any HTTP status comes back as a Reply, an unreachable service as ServiceUnavailable."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base_url.rstrip("/") + path, data=data, method=method or ("GET" if data is None else "POST")
    )
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return Reply(response.status, _decode(response.read()), dict(response.headers))
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, _decode(exc.read()), dict(exc.headers or {}))
    except (OSError, ValueError) as exc:
        raise ServiceUnavailable(
            f"the recommendation service at {base_url} does not answer ({exc})"
        ) from None


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode(errors="replace")
