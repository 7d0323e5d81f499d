"""The serving artifact: a SavedModel whose signature takes raw column values, plus its spec.

Everything the graph needs (vocabularies, hash buckets, normalisation statistics) is baked into the
SavedModel, so a server needs only ``saved_model/`` and ``spec.json`` (for column order and types);
``config.json`` records hyper-parameters and training facts for the registry, it is not read to score.
Serving calls the signature (a traced ``tf.function``), never ``model.predict``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from models.tf_runtime import load_saved_model, tensorflow
from models.wide_deep.model import RankerSpec, WideDeepConfig
from models.wide_deep.train import WideDeepRanker, make_score_function, score_in_batches

SAVED_MODEL: Final = "saved_model"
SPEC_FILE: Final = "spec.json"
CONFIG_FILE: Final = "config.json"
SIGNATURE: Final = "serving_default"


def export(ranker: WideDeepRanker, out_dir: Path) -> dict[str, str]:
    """Write the artifact under ``out_dir``; returns ``{"saved_model", "spec", "config"}`` → path."""
    if ranker.network is None or ranker.preprocessing is None:
        raise ValueError("export needs a fitted WideDeepRanker")
    tf = tensorflow()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    module = tf.Module()
    module.network = ranker.network
    module.serve = make_score_function(ranker.spec, ranker.network)
    saved_model = out_dir / SAVED_MODEL
    tf.saved_model.save(module, str(saved_model), signatures={SIGNATURE: module.serve})

    spec_path = out_dir / SPEC_FILE
    spec_path.write_text(json.dumps(ranker.spec.to_json(), indent=2) + "\n")
    config_path = out_dir / CONFIG_FILE
    facts = {
        "config": ranker.config.to_json(),
        "max_label": ranker.max_label_,
        "examples": ranker.examples_,
        "epochs_run": ranker.epochs_run_,
        "fit_seconds": ranker.fit_seconds_,
        "history": ranker.history_,
        "preprocessing": ranker.preprocessing.to_json(),  # informational: baked into the graph
    }
    config_path.write_text(json.dumps(facts, indent=2) + "\n")
    return {"saved_model": str(saved_model), "spec": str(spec_path), "config": str(config_path)}


@dataclass(frozen=True)
class WideDeepArtifact:
    """A loaded artifact: scores frames through the SavedModel signature, like the server does."""

    spec: RankerSpec
    config: WideDeepConfig
    facts: dict[str, Any]
    saved_model: Any  # the restored object; it owns the variables the signature reads

    @classmethod
    def load(cls, out_dir: Path) -> WideDeepArtifact:
        out_dir = Path(out_dir)
        spec = RankerSpec.from_json(json.loads((out_dir / SPEC_FILE).read_text()))
        facts = json.loads((out_dir / CONFIG_FILE).read_text())
        loaded = load_saved_model(out_dir / SAVED_MODEL)
        return cls(spec, WideDeepConfig.from_json(facts["config"]), facts, loaded)

    def score(self, frame: pd.DataFrame | Mapping[str, np.ndarray]) -> np.ndarray:
        """Same scores as :meth:`WideDeepRanker.score` on the ranker that was exported."""
        signature = self.saved_model.signatures[SIGNATURE]
        return score_in_batches(lambda batch: signature(**batch)["score"].numpy(), self.spec, frame)
