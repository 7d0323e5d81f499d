"""Jobs: A/B experiments (define, start, stop, inspect, assign), attribution, analysis, simulated traffic.

`aisle experiment …`, `aisle simulate traffic`, the demo and the DAGs call these; the operations
themselves live in ``serving.experiments`` (the service runs them too) and ``monitoring.experiments``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aisle.app.jobs import parse_params
from aisle.core.settings import Settings


@dataclass(frozen=True)
class CreateParams:
    file: str = ""


def create(settings: Settings, params: Any = None) -> dict[str, Any]:
    """Store a YAML definition as a draft (new key: version 1; stopped key: the next version)."""
    from aisle.core.errors import BadInput
    from serving.experiments import api

    p = parse_params(CreateParams, params)
    if not p.file:
        raise BadInput("give the experiment definition file (YAML)")
    return api.create(settings, Path(p.file))


@dataclass(frozen=True)
class KeyParams:
    key: str = ""
    version: int | None = None


def _key(params: Any) -> KeyParams:
    from aisle.core.errors import BadInput

    p = parse_params(KeyParams, params)
    if not p.key:
        raise BadInput("give the experiment key")
    return p


def start(settings: Settings, params: Any = None) -> dict[str, Any]:
    from serving.experiments import api

    return api.start(settings, _key(params).key)


def stop(settings: Settings, params: Any = None) -> dict[str, Any]:
    from serving.experiments import api

    return api.stop(settings, _key(params).key)


def list_experiments(settings: Settings, params: Any = None) -> dict[str, Any]:
    from serving.experiments import api

    return api.list_experiments(settings)


def show(settings: Settings, params: Any = None) -> dict[str, Any]:
    from serving.experiments import api

    p = _key(params)
    return api.show(settings, p.key, p.version)


@dataclass(frozen=True)
class AssignParams:
    key: str = ""
    user: str = ""
    device: str | None = None
    country: str | None = None
    returning: bool | None = None


def assign(settings: Settings, params: Any = None) -> dict[str, Any]:
    from aisle.core.errors import BadInput
    from serving.experiments import api

    p = parse_params(AssignParams, params)
    if not p.key or not p.user:
        raise BadInput("give the experiment key and a user id")
    return api.assign(settings, p.key, p.user, device=p.device, country=p.country, returning=p.returning)
