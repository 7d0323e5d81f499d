"""The model table: each model's name → how to fit it, save it, load it and score it on a holdout.

Adding a model is one entry here (plus its own package). The stages never branch on a model's name;
they ask the table. Heavy libraries are imported inside the functions, so the DAG file can read the
model names from here in milliseconds.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from aisle.core.errors import BadInput

if TYPE_CHECKING:
    import pandas as pd

    from aisle.core.settings import Settings
    from models.evaluation import Split
    from models.training.params import TrainParams


@dataclass(frozen=True)
class FitInputs:
    """What a fit may read: the run's settings and parameters, events, catalog, the ranker's set."""

    settings: Settings | None  # only models that need services (ALS: Spark) read it
    params: TrainParams
    events: pd.DataFrame
    catalog: pd.DataFrame | None
    ranker_frame: pd.DataFrame | None = None
    #: What ``models.tuning.tune`` decided on the validation period (name → {"params": ...}).
    tuned: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelEntry:
    """``fit`` → a fitted model; ``save`` writes it to a directory and returns fit statistics;
    ``load`` reads it back; ``scorer`` wraps what ``load`` returns as an evaluation ``Recommender``
    for a run's split (None: not scored on its own, e.g. the ranker, which is scored inside the policy).
    """

    kind: Literal["baseline", "retriever", "ranker", "sequence"]
    fit: Callable[[FitInputs], Any]
    save: Callable[[Any, Path], dict[str, Any]]
    load: Callable[[Path], Any]
    scorer: Callable[[Any, Split, Mapping[str, set[str]]], Any] | None


# ---------------------------------------------------------------- baselines: pickled estimators

_PICKLE: Final = "model.pkl"


def _save_pickle(model: Any, target: Path) -> dict[str, Any]:
    with open(target / _PICKLE, "wb") as fh:
        pickle.dump(model, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return {}


def _load_pickle(target: Path) -> Any:
    with open(target / _PICKLE, "rb") as fh:
        return pickle.load(fh)  # our own artifact, written by this run


def _as_is(model: Any, split: Split, seen: Mapping[str, set[str]]) -> Any:
    return model


def _baseline(factory: Callable[[FitInputs], Any]) -> ModelEntry:
    return ModelEntry(
        kind="baseline",
        fit=lambda inputs: factory(inputs).fit(inputs.events, inputs.catalog),
        save=_save_pickle,
        load=_load_pickle,
        scorer=_as_is,
    )


def _popularity(_: FitInputs) -> Any:
    from models.baselines import PopularityRecommender

    return PopularityRecommender()


def _tuned(name: str) -> Callable[[FitInputs], Any]:
    """A model with the parameters tuned on the run's validation period (defaults when not tuned)."""

    def factory(inputs: FitInputs) -> Any:
        from models.tuning import tuned_model

        return tuned_model(name, inputs.tuned)

    return factory


def _cooccurrence(_: FitInputs) -> Any:
    from models.baselines import CooccurrenceRecommender

    return CooccurrenceRecommender()


def _item_knn(_: FitInputs) -> Any:
    from models.baselines import ItemKNNRecommender

    return ItemKNNRecommender()


def _als(inputs: FitInputs) -> Any:
    from models.baselines import ALSRecommender

    if inputs.settings is None:
        raise BadInput("ALS runs on Spark and needs the settings that say where")
    return ALSRecommender(inputs.settings, max_iter=inputs.params.als_iterations, seed=inputs.params.seed)


# ---------------------------------------------------------------- two-tower retrieval


def two_tower_model(params: TrainParams) -> Any:
    """An unfitted two-tower model configured from the run's parameters."""
    from models.two_tower.train import TwoTowerConfig, TwoTowerRecommender

    config = TwoTowerConfig(
        embedding_dim=params.embedding_dim,
        epochs=params.epochs,
        learning_rate=params.learning_rate,
        seed=params.seed,
    )
    return TwoTowerRecommender(config)


def _fit_two_tower(inputs: FitInputs) -> Any:
    return two_tower_model(inputs.params).fit(inputs.events, inputs.catalog)


def _fit_summary(model: Any) -> dict[str, Any]:
    """What a fitted Keras retrieval model (two-tower, SASRec) records about its training."""
    return {"examples": model.examples_, "epochs": model.epochs_run_, "final_loss": model.history_[-1]}


def _save_two_tower(model: Any, target: Path) -> dict[str, Any]:
    from models.two_tower.export import export

    export(model, target)
    return _fit_summary(model)


def _load_two_tower(target: Path) -> Any:
    from models.two_tower.export import TwoTowerArtifact

    return TwoTowerArtifact.load(target)


def _score_two_tower(artifact: Any, split: Split, seen: Mapping[str, set[str]]) -> Any:
    from models.training.scoring import TowerRecommender

    return TowerRecommender(artifact, split, seen)


# ---------------------------------------------------------------- Wide & Deep ranker


def _fit_wide_deep(inputs: FitInputs) -> Any:
    from models.features import RANKER_SPEC
    from models.wide_deep.train import WideDeepConfig, WideDeepRanker

    if inputs.ranker_frame is None:
        raise BadInput("the Wide & Deep ranker needs the prepared training set (run prepare first)")
    config = WideDeepConfig(
        epochs=inputs.params.epochs,
        learning_rate=inputs.params.ranker_learning_rate,
        batch_size=256,
        seed=inputs.params.seed,
    )
    return WideDeepRanker(RANKER_SPEC, config).fit(inputs.ranker_frame)


def _save_wide_deep(model: Any, target: Path) -> dict[str, Any]:
    from models.wide_deep.export import export

    export(model, target)
    return {
        "examples": model.examples_,
        "epochs": model.epochs_run_,
        "final_loss": model.history_["loss"][-1],
    }


def _load_wide_deep(target: Path) -> Any:
    from models.wide_deep.export import WideDeepArtifact

    return WideDeepArtifact.load(target)


# ---------------------------------------------------------------- SASRec sequence model


def _fit_sasrec(inputs: FitInputs) -> Any:
    from models.sasrec.model import SASRecConfig
    from models.sasrec.train import SASRecRecommender

    config = SASRecConfig(epochs=inputs.params.epochs, seed=inputs.params.seed)
    return SASRecRecommender(config).fit(inputs.events, inputs.catalog)


def _save_sasrec(model: Any, target: Path) -> dict[str, Any]:
    from models.sasrec.export import export

    export(model, target)
    return _fit_summary(model)


def _load_sasrec(target: Path) -> Any:
    from models.sasrec.export import SASRecArtifact

    return SASRecArtifact.load(target)


def _score_sasrec(artifact: Any, split: Split, seen: Mapping[str, set[str]]) -> Any:
    from models.training.scoring import SequenceScorer

    return SequenceScorer(artifact, split, seen)


MODELS: Final[dict[str, ModelEntry]] = {
    "popularity": _baseline(_popularity),
    "recent_popularity": _baseline(_tuned("recent_popularity")),
    "trending": _baseline(_tuned("trending")),
    "cooccurrence": _baseline(_cooccurrence),
    "item_knn": _baseline(_item_knn),
    "item_knn_decay": _baseline(_tuned("item_knn_decay")),
    "session_knn": _baseline(_tuned("session_knn")),
    "als": _baseline(_als),
    "two_tower": ModelEntry("retriever", _fit_two_tower, _save_two_tower, _load_two_tower, _score_two_tower),
    "wide_deep": ModelEntry("ranker", _fit_wide_deep, _save_wide_deep, _load_wide_deep, None),
    "sasrec": ModelEntry("sequence", _fit_sasrec, _save_sasrec, _load_sasrec, _score_sasrec),
}


def entry(name: str) -> ModelEntry:
    try:
        return MODELS[name]
    except KeyError:
        raise BadInput(f"unknown model {name!r}; choose from {', '.join(MODELS)}") from None


def fit_and_save(name: str, inputs: FitInputs, target: Path) -> dict[str, Any]:
    """Fit one model on ``inputs.events`` and save it under ``target``; returns its fit statistics."""
    import time

    target.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    model = entry(name).fit(inputs)
    stats = entry(name).save(model, target)
    stats["fit_seconds"] = round(time.perf_counter() - started, 3)
    stats["train_events"] = len(inputs.events)
    return stats


def load(name: str, target: Path) -> Any:
    return entry(name).load(target)
