"""The experiment operations behind both `aisle experiment …` (through its job) and `/admin/experiments…`.

One function per operation, each returning a JSON-able dict, so the command line and the service's
admin routes cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aisle.core.errors import BadInput
from aisle.core.settings import Settings, ensure_home
from serving.experiments.assignment import Assigner, bucket
from serving.experiments.spec import ExperimentSpec, load_spec, parse_spec
from serving.experiments.store import RUNNING, Experiment, ExperimentStore


def open_store(settings: Settings) -> ExperimentStore:
    """The configured store; the embedded SQLite file's directory is created on first use."""
    if settings.experiments_db_url:
        return ExperimentStore(settings.experiments_db_url)

    def make_dirs() -> None:
        ensure_home(settings)
        settings.paths.experiments.mkdir(parents=True, exist_ok=True)

    return ExperimentStore(settings.effective_experiments_db_url, create_dirs=make_dirs)


def registered_aliases(settings: Settings) -> set[str]:
    """Aliases of the registered policy in MLflow (empty when nothing is registered yet)."""
    from models import registry

    try:
        model = registry.client(settings).get_registered_model(registry.REGISTERED_MODEL)
    except Exception:  # MLflow raises its RestException when the model does not exist
        return set()
    return set((getattr(model, "aliases", None) or {}).keys())


def _spec(definition: Path | Mapping[str, Any] | ExperimentSpec) -> ExperimentSpec:
    if isinstance(definition, ExperimentSpec):
        return definition
    if isinstance(definition, Path):
        return load_spec(definition)
    return parse_spec(dict(definition))


def create(
    settings: Settings,
    definition: Path | Mapping[str, Any] | ExperimentSpec,
    *,
    aliases: set[str] | None = None,
) -> dict[str, Any]:
    spec = _spec(definition)
    if not spec.aliases():  # strategies only: no registry to ask
        known: set[str] | None = None
    else:
        known = registered_aliases(settings) if aliases is None else aliases
    if spec.aliases() and not known:
        raise BadInput(
            f"experiment {spec.key!r} serves model alias(es) {', '.join(sorted(spec.aliases()))}, but no "
            "policy is registered yet; run `aisle train` first (or use strategy variants)"
        )
    with _store(settings) as store:
        exp = store.create(spec, known)
    return {"experiment": exp.to_dict()}


@contextmanager
def _store(settings: Settings) -> Iterator[ExperimentStore]:
    store = open_store(settings)
    try:
        yield store
    finally:
        store.close()


def start(settings: Settings, key: str) -> dict[str, Any]:
    with _store(settings) as store:
        return {"experiment": store.start(key).to_dict()}


def stop(settings: Settings, key: str) -> dict[str, Any]:
    with _store(settings) as store:
        return {"experiment": store.stop(key).to_dict()}


def list_experiments(settings: Settings) -> dict[str, Any]:
    with _store(settings) as store:
        found = store.list_latest()
    return {
        "experiments": [
            {
                "key": e.key,
                "version": e.version,
                "status": e.status,
                "layer": e.layer,
                "coverage": e.spec.coverage,
                "variants": {v.name: v.serves for v in e.spec.variants},
                "started_at": e.started_at.isoformat() if e.started_at else None,
            }
            for e in found
        ]
    }


def show(settings: Settings, key: str, version: int | None = None) -> dict[str, Any]:
    with _store(settings) as store:
        exp = store.get(key, version)
        versions = [e.version for e in store.versions(key)]
        looks = store.looks(exp)
    return {"experiment": exp.to_dict(), "versions": versions, "looks": len(looks)}


def explain(exp: Experiment, user_id: str, **context: Any) -> dict[str, Any]:
    """Which variant ``user_id`` gets in ``exp`` and why (forced, outside coverage, not targeted...)."""
    out: dict[str, Any] = {
        "experiment": exp.key,
        "version": exp.version,
        "status": exp.status,
        "user_id": user_id,
    }
    forced = exp.spec.overrides.get(user_id)
    if forced is not None:
        return {**out, "variant": forced, "reason": "forced (override)"}
    if exp.status == RUNNING:
        got = Assigner([exp]).assign(user_id, **context)
        if got is not None:
            return {**out, "variant": got.variant, "reason": "assigned by hash"}
        b = bucket(exp.layer, user_id)
        inside = (
            exp.bucket_lo is not None and exp.bucket_hi is not None and exp.bucket_lo <= b < exp.bucket_hi
        )
        why = "not targeted (device, country or new/returning)" if inside else "outside coverage"
        return {**out, "variant": None, "reason": why}
    # not running: the variant the hash would give, had the shopper been admitted
    preview = Assigner([_as_running(exp)]).experiments[exp.key].variant_for(user_id)
    return {**out, "variant": None, "would_be": preview.variant, "reason": f"experiment is {exp.status}"}


def _as_running(exp: Experiment) -> Experiment:
    from dataclasses import replace

    return replace(exp, status=RUNNING, bucket_lo=0, bucket_hi=0)


def assign(settings: Settings, key: str, user_id: str, **context: Any) -> dict[str, Any]:
    with _store(settings) as store:
        exp = store.get(key)
    return explain(exp, user_id, **context)


def last_analysis(settings: Settings, key: str, version: int | None = None) -> dict[str, Any]:
    """The analysis `aisle experiment analyze` last wrote for the version (latest by default)."""
    import json

    from serving.experiments.store import UnknownExperiment

    with _store(settings) as store:
        exp = store.get(key, version)
    path = settings.paths.experiments / exp.key / f"v{exp.version}" / "analysis.json"
    if not path.exists():
        raise UnknownExperiment(
            f"experiment {key!r} version {exp.version} has not been analysed yet: run "
            f"`aisle experiment analyze {key}`"
        )
    summary: dict[str, Any] = json.loads(path.read_text())
    summary.pop("timeline", None)
    return summary


def running_assigner(settings: Settings) -> Assigner:
    """A snapshot of every running experiment, for the service (refreshed by the caller)."""
    with _store(settings) as store:
        return Assigner(store.running())
