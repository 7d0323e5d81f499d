"""MLflow: where runs are tracked, what the training stages log, and how the policy is registered.

Aliases, never stages or "latest": serving asks for ``models:/aisle-recommender@champion``; every newly
trained policy is registered and gets ``challenger``; only the gate (or a person, on the record, with
``aisle models promote``) moves ``champion``. Each move is appended to the registered model's
``champion_history`` tag, which is what ``rollback`` walks back. The gate's decision itself is
``models.gate``; every MLflow call of a training run goes through this module.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aisle.core.errors import AisleError, BadInput
from aisle.core.settings import Settings, export_env

log = logging.getLogger(__name__)

REGISTERED_MODEL = "aisle-recommender"
EXPERIMENT = "aisle"
CHAMPION = "champion"
CHALLENGER = "challenger"
HISTORY_TAG = "champion_history"
POLICY_ARTIFACT = "policy"


def _mlflow(settings: Settings) -> Any:
    export_env(
        {
            "MLFLOW_TRACKING_URI": settings.effective_mlflow_uri,
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        }
    )
    logging.getLogger("mlflow").setLevel(logging.ERROR)  # per-call INFO/WARNING chatter, not for users
    logging.getLogger("alembic").setLevel(logging.WARNING)
    import mlflow

    settings.paths.mlflow.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(settings.effective_mlflow_uri)
    return mlflow


def experiment_id(settings: Settings, name: str = EXPERIMENT) -> str:
    """An experiment (``aisle`` by default), created with its artifacts under ``$AISLE_HOME/mlflow``."""
    mlflow = _mlflow(settings)
    existing = mlflow.get_experiment_by_name(name)
    if existing is not None:
        return str(existing.experiment_id)
    location = (settings.paths.mlflow / "artifacts").resolve().as_uri()
    return str(mlflow.create_experiment(name, artifact_location=location))


def client(settings: Settings) -> Any:
    return _mlflow(settings).MlflowClient()


def start_run(
    settings: Settings,
    name: str,
    run_id: str | None = None,
    parent: str | None = None,
    experiment: str = EXPERIMENT,
) -> Any:
    """Start (or resume, given ``run_id``) a run in ``experiment`` (aisle); nested under ``parent``."""
    mlflow = _mlflow(settings)
    if run_id is not None:
        return mlflow.start_run(run_id=run_id)
    tags = {"mlflow.parentRunId": parent} if parent else None
    return mlflow.start_run(experiment_id=experiment_id(settings, experiment), run_name=name, tags=tags)


def log_frame(settings: Settings, frame: pd.DataFrame, artifact_file: str) -> None:
    """A table as an MLflow table artifact (JSON, shown in the UI) plus a CSV copy for people."""
    mlflow = _mlflow(settings)
    clean = frame.drop(columns=[c for c in frame.columns if c.startswith("_")])
    mlflow.log_table(clean, artifact_file=artifact_file)
    mlflow.log_text(clean.to_csv(index=False), artifact_file.rsplit(".", 1)[0] + ".csv")


def log_lake_input(settings: Settings, snapshot: Mapping[str, Any]) -> None:
    """Record the event lake as the active run's input dataset (MLflow lineage), by path and digest.

    A metadata-only dataset: the lake is the durable copy, so the run points at it rather than
    copying a million rows into the tracking store.
    """
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    mlflow = _mlflow(settings)
    with warnings.catch_warnings():  # "resolved to a local source" is what we want, not news
        warnings.simplefilter("ignore")
        source = resolve_dataset_source(str(settings.paths.lake))
    dataset = MetaDataset(source=source, name="event_lake", digest=str(snapshot["events_digest"]))  # type: ignore[abstract]
    mlflow.log_input(dataset, context="training")


# ---------------------------------------------------------------- what the training stages log


def reason_tags(reason: str) -> dict[str, str]:
    """MLflow tags of why a run happened: ``aisle.reason`` and its kind (the text before the colon)."""
    if not reason:
        return {}
    return {"aisle.reason": reason[:5000], "aisle.reason_kind": reason.split(":", 1)[0].strip()}


def log_run_start(
    settings: Settings, kind: str, run_key: str, params: Mapping[str, Any], snapshot: Mapping[str, Any]
) -> str:
    """Open a training run's parent run: its parameters, the data it read (lineage), why it runs;
    returns its id."""
    with start_run(settings, kind) as run:
        mlflow = _mlflow(settings)
        mlflow.set_tags(
            {"aisle.run_key": run_key, "aisle.kind": kind, **reason_tags(str(params.get("reason") or ""))}
        )
        mlflow.log_params(
            {f"param.{k}": (",".join(v) if isinstance(v, tuple) else v) for k, v in params.items()}
        )
        mlflow.log_params({f"data.{k}": v for k, v in snapshot.items()})
        mlflow.log_dict(dict(snapshot), "data_snapshot.json")
        log_lake_input(settings, snapshot)
        return str(run.info.run_id)


def log_fit(
    settings: Settings, parent_run_id: str, run_key: str, model: str, seed: int, stats: Mapping[str, Any]
) -> None:
    """One model's fit as a run nested under the training run."""
    with start_run(settings, model, parent=parent_run_id):
        mlflow = _mlflow(settings)
        mlflow.set_tags({"aisle.run_key": run_key, "aisle.model": model})
        mlflow.log_params({"model": model, "seed": seed})
        mlflow.log_metrics({k: float(v) for k, v in stats.items() if isinstance(v, int | float)})


def log_evaluation(
    settings: Settings, run_id: str, table: pd.DataFrame, extra: Mapping[str, Any], k: int, figure: Any
) -> None:
    """The comparison table (artifact and metrics ``model.segment.metric_at_k``) and its plot."""
    with start_run(settings, "", run_id=run_id):
        mlflow = _mlflow(settings)
        log_frame(settings, table, "evaluation/comparison.json")
        metrics = {}
        for row in table.to_dict("records"):
            for col in (f"ndcg@{k}", f"recall@{k}", f"map@{k}", f"hit_rate@{k}", f"coverage@{k}"):
                value = row.get(col)
                if value is not None and np.isfinite(value):
                    metrics[f"{row['model']}.{row['segment']}.{col.replace('@', '_at_')}"] = float(value)
        mlflow.log_metrics(metrics)
        rmse = (extra.get("als_rating") or {}).get("rmse")
        if rmse is not None:
            mlflow.log_metric("als.rating_rmse", float(rmse))
        mlflow.log_figure(figure, "evaluation/ndcg.png")


def log_gate(settings: Settings, run_id: str, result: Mapping[str, Any]) -> None:
    """The gate's verdict on the training run: the decision as JSON, passed and reasons as tags."""
    with start_run(settings, "", run_id=run_id):
        mlflow = _mlflow(settings)
        mlflow.log_dict(dict(result), "gate.json")
        mlflow.set_tags(
            {"gate.passed": str(result["passed"]), "gate.reasons": "; ".join(result["reasons"])[:4000]}
        )


# ---------------------------------------------------------------- registering and aliases


def register_policy(settings: Settings, run_id: str, policy_dir: Path, tags: Mapping[str, str]) -> str:
    """Log the exported policy as an MLflow pyfunc model in ``run_id``, register it, alias it challenger."""
    from models.pyfunc import PolicyModel

    mlflow = _mlflow(settings)
    with mlflow.start_run(run_id=run_id), warnings.catch_warnings():
        # no input_example on purpose: MLflow would load the whole policy (TensorFlow) to validate it
        warnings.filterwarnings("ignore", message=".*input example was not provided.*")
        info = mlflow.pyfunc.log_model(
            name=POLICY_ARTIFACT,
            python_model=PolicyModel(),
            artifacts={POLICY_ARTIFACT: str(policy_dir)},
            pip_requirements=_requirements(),
            signature=_signature(),
        )
    version = mlflow.register_model(info.model_uri, REGISTERED_MODEL, tags=dict(tags))
    client(settings).set_registered_model_alias(REGISTERED_MODEL, CHALLENGER, version.version)
    return str(version.version)


def _signature() -> Any:
    """Input: user_id and, optionally, the shopper's recent items (newest first); param k; output rows."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Array, ColSpec, ParamSchema, ParamSpec, Schema

    return ModelSignature(
        inputs=Schema(
            [ColSpec("string", "user_id"), ColSpec(Array("string"), "recent_items", required=False)]
        ),
        outputs=Schema(
            [
                ColSpec("string", "user_id"),
                ColSpec("string", "item_id"),
                ColSpec("long", "rank"),
                ColSpec("double", "score"),
            ]
        ),
        params=ParamSchema([ParamSpec("k", "long", 10)]),
    )


def _requirements() -> list[str]:
    """What the pyfunc needs to load, pinned to the versions that trained it."""
    from importlib.metadata import version

    names = (
        "mlflow",
        "tensorflow",
        "tf-keras",
        "tensorflow-recommenders",
        "faiss-cpu",
        "pandas",
        "scipy",
        "pyarrow",
    )
    return [f"{name}=={version(name)}" for name in names]


def _history(settings: Settings) -> list[str]:
    try:
        model = client(settings).get_registered_model(REGISTERED_MODEL)
    except Exception:  # RestException when nothing is registered yet
        return []
    return list(json.loads(model.tags.get(HISTORY_TAG, "[]")))


def _version_exists(settings: Settings, version: str) -> bool:
    try:
        client(settings).get_model_version(REGISTERED_MODEL, version)
    except Exception:
        return False
    return True


def alias_version(settings: Settings, alias: str) -> str | None:
    """The version an alias points at, or None if unset / nothing registered."""
    try:
        return str(client(settings).get_model_version_by_alias(REGISTERED_MODEL, alias).version)
    except Exception:
        return None


def promote(settings: Settings, version: str, reason: str) -> dict[str, Any]:
    """Point ``champion`` at ``version`` and record the move (and why) for rollback and audit."""
    if not _version_exists(settings, version):
        raise BadInput(f"{REGISTERED_MODEL} has no version {version}; see `aisle models list`")
    c = client(settings)
    previous = alias_version(settings, CHAMPION)
    c.set_registered_model_alias(REGISTERED_MODEL, CHAMPION, version)
    history = [*_history(settings), version]
    c.set_registered_model_tag(REGISTERED_MODEL, HISTORY_TAG, json.dumps(history[-50:]))
    c.set_model_version_tag(REGISTERED_MODEL, version, "promoted_because", reason[:500])
    return {"champion": version, "previous": previous, "reason": reason}


def rollback(settings: Settings) -> dict[str, Any]:
    """Move ``champion`` back to the version that held it before the current one."""
    history = _history(settings)
    current = alias_version(settings, CHAMPION)
    if current is None:
        raise BadInput("there is no champion to roll back; run `aisle train` first")
    earlier = [v for v in history if v != current and _version_exists(settings, v)]
    if not earlier:
        raise BadInput(f"champion v{current} has no earlier champion to roll back to")
    target = earlier[-1]
    c = client(settings)
    c.set_registered_model_alias(REGISTERED_MODEL, CHAMPION, target)
    # drop the rolled-back version from the history so a second rollback goes further back
    trimmed = [v for v in history if v != current]
    c.set_registered_model_tag(REGISTERED_MODEL, HISTORY_TAG, json.dumps(trimmed))
    c.set_model_version_tag(REGISTERED_MODEL, current, "rolled_back", "true")
    return {"champion": target, "previous": current}


def list_versions(settings: Settings) -> list[dict[str, Any]]:
    """Every registered version with its aliases, key metrics and gate outcome, newest first."""
    c = client(settings)
    try:
        versions = c.search_model_versions(f"name='{REGISTERED_MODEL}'")
    except Exception as exc:
        raise AisleError(
            f"cannot read the MLflow registry at {settings.effective_mlflow_uri}: {exc}"
        ) from exc
    rows = []
    for found in sorted(versions, key=lambda v: int(v.version), reverse=True):
        v = c.get_model_version(REGISTERED_MODEL, found.version)  # search results omit aliases
        rows.append(
            {
                "version": str(v.version),
                "aliases": sorted(getattr(v, "aliases", []) or []),
                "run_id": v.run_id,
                "created": pd.Timestamp(v.creation_timestamp, unit="ms", tz="UTC").isoformat(),
                **{k: v.tags[k] for k in sorted(v.tags) if k.startswith(("ndcg", "gate", "trained"))},
            }
        )
    return rows


def download_policy(
    settings: Settings, alias: str = CHAMPION, version: str | None = None
) -> tuple[Path, str]:
    """Local copy of a registered policy directory (by alias, or by version), and its version."""
    mlflow = _mlflow(settings)
    chosen = version or alias_version(settings, alias)
    if chosen is None:
        raise BadInput(f"no {REGISTERED_MODEL} version has the alias {alias!r}; run `aisle train` first")
    if not _version_exists(settings, chosen):
        raise BadInput(f"{REGISTERED_MODEL} has no version {chosen}; see `aisle models list`")
    target = settings.paths.models / "registry" / f"v{chosen}"
    found = _policy_in(target)
    if found is None:
        target.mkdir(parents=True, exist_ok=True)
        mlflow.artifacts.download_artifacts(f"models:/{REGISTERED_MODEL}/{chosen}", dst_path=str(target))
        found = _policy_in(target)
    if found is None:
        raise AisleError(f"{REGISTERED_MODEL} v{chosen} holds no policy directory (no policy.json)")
    return found, chosen


def _policy_in(model_dir: Path) -> Path | None:
    """The logged policy directory inside a downloaded pyfunc model (MLflow keeps the source's name)."""
    artifacts = model_dir / "artifacts"
    if not artifacts.is_dir():
        return None
    return next((p for p in sorted(artifacts.iterdir()) if (p / "policy.json").is_file()), None)
