"""The training run's parameters and the model names, apart from the stages' heavy imports.

Airflow parses the `train_models` DAG file often; its trigger form takes these defaults, so this module
(and ``models.training.table``, where the names come from) must import in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from aisle.core.errors import BadInput
from models.training.table import MODELS

LEARNED: Final = tuple(name for name, e in MODELS.items() if e.kind != "baseline")
BASELINES: Final = tuple(name for name, e in MODELS.items() if e.kind == "baseline")
ALL_MODELS: Final = tuple(MODELS)
HYBRID: Final = "hybrid"
#: Always fitted when the policy is trained: its own candidate sources and fallbacks.
POLICY_PARTS: Final = ("popularity", "trending", "cooccurrence")


@dataclass(frozen=True)
class TrainParams:
    models: tuple[str, ...] = ALL_MODELS
    epochs: int = 5
    embedding_dim: int = 32
    learning_rate: float = 0.05
    ranker_learning_rate: float = 1e-3
    holdout_days: int = 7
    label_days: int = 14
    negatives: int = 4
    k: int = 10
    seed: int = 0
    als_iterations: int = 10
    n_boot: int = 1000
    min_test_users: int = 20
    max_eval_users: int = 20_000
    max_label_rows: int = 100_000
    #: Why this run happens (an asset event, a schedule, a manual or monitoring trigger); recorded as
    #: the MLflow tag ``aisle.reason`` on the run and the registered version.
    reason: str = ""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.models) - set(ALL_MODELS))
        if unknown:
            raise BadInput(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(ALL_MODELS)}")
        if not self.models:
            raise BadInput("--models needs at least one model")
        for name in ("epochs", "embedding_dim", "holdout_days", "label_days", "k", "als_iterations"):
            if getattr(self, name) < 1:
                raise BadInput(f"{name} must be at least 1 (got {getattr(self, name)})")
        if not 0 < self.learning_rate < 10 or not 0 < self.ranker_learning_rate < 10:
            raise BadInput("learning rates must be in (0, 10)")

    @property
    def hybrid(self) -> bool:
        """Whether this run trains (and can register) the hybrid policy: it needs every learned part."""
        return set(LEARNED) <= set(self.models)

    def fitted(self) -> tuple[str, ...]:
        """Models this run fits: those asked for plus the policy's parts when the hybrid is on."""
        extra = POLICY_PARTS if self.hybrid else ()
        return tuple(dict.fromkeys((*self.models, *extra)))

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrainParams:
        data = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__ and v is not None}
        if isinstance(data.get("models"), str):
            data["models"] = tuple(m.strip() for m in data["models"].split(",") if m.strip())
        elif "models" in data:
            data["models"] = tuple(data["models"])
        return cls(**data)
