"""The serving artifact of a SASRec model, and its loader: a SavedModel signature plus the item table.

Layout of ``out_dir``::

    encoder/             SavedModel, signature serving_default: tokens int64[None, max_len] → state
    item_embeddings.npy  float32 (n_items, dim), rows in item_ids order
    item_ids.json        the item ids (token = row + 2; 0 pads, 1 is an unknown item)
    popularity.npy       interaction counts per item (the list for a shopper with no recent items)
    config.json          SASRecConfig
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Final, Self

import numpy as np
import pandas as pd

from models.sasrec.model import SASRecConfig
from models.sasrec.train import SCORE_BATCH, SASRecRecommender, tokenize

FILES: Final = {
    "encoder": "encoder",
    "item_embeddings": "item_embeddings.npy",
    "item_ids": "item_ids.json",
    "popularity": "popularity.npy",
    "config": "config.json",
}


def export(model: SASRecRecommender, out_dir: Path) -> dict[str, str]:
    from models.sasrec.model import state_function
    from models.tf_runtime import tensorflow

    tf = tensorflow()
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / file for name, file in FILES.items()}
    module = tf.Module()
    module.encoder = model.encoder_
    module.serve = state_function(model.encoder_, model.max_len)
    tf.saved_model.save(module, str(paths["encoder"]), signatures={"serving_default": module.serve})
    np.save(paths["item_embeddings"], model.item_embeddings())
    np.save(paths["popularity"], model.popularity_)
    paths["item_ids"].write_text(json.dumps([str(i) for i in model.item_ids_]))
    paths["config"].write_text(json.dumps(asdict(model.config), indent=2))
    return {name: str(path) for name, path in paths.items()}


class SASRecArtifact:
    """An exported SASRec model for serving: the signature, the item table, no training code paths."""

    def __init__(
        self,
        saved: Any,
        item_ids: np.ndarray,
        embeddings: np.ndarray,
        popularity: np.ndarray,
        config: SASRecConfig,
    ):
        self._saved = saved  # owns the variables the signature reads
        self._signature = saved.signatures["serving_default"]
        self.item_ids_ = item_ids
        self._index = pd.Index(item_ids)
        self._embeddings = embeddings
        self.popularity_ = popularity
        self.config = config

    @classmethod
    def load(cls, out_dir: Path) -> Self:
        from models.tf_runtime import load_saved_model

        config = SASRecConfig(**json.loads((out_dir / FILES["config"]).read_text()))
        item_ids = np.asarray(json.loads((out_dir / FILES["item_ids"]).read_text()), dtype=object)
        embeddings = np.load(out_dir / FILES["item_embeddings"])
        if len(embeddings) != len(item_ids):
            raise ValueError(f"{out_dir}: {len(embeddings)} embeddings for {len(item_ids)} items")
        popularity = np.load(out_dir / FILES["popularity"])
        return cls(load_saved_model(out_dir / FILES["encoder"]), item_ids, embeddings, popularity, config)

    @property
    def max_len(self) -> int:
        return self.config.max_len

    def item_embeddings(self) -> np.ndarray:
        return self._embeddings

    def states(self, recent: Sequence[Sequence[str]]) -> np.ndarray:
        from models.tf_runtime import tensorflow

        tf = tensorflow()
        tokens = tokenize(recent, self._index, self.max_len)
        out = np.zeros((len(tokens), self.config.dim), dtype=np.float32)
        for lo in range(0, len(tokens), SCORE_BATCH):
            out[lo : lo + SCORE_BATCH] = self._signature(tokens=tf.constant(tokens[lo : lo + SCORE_BATCH]))[
                "state"
            ].numpy()
        return out
