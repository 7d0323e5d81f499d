"""The training run's parameters and the model names, apart from the stages' heavy imports.

Airflow parses the `train_models` DAG file often; its trigger form takes these defaults, so this module
(and ``models.training.table``, where the names come from) must import in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from aisle.core.errors import BadInput
from models.training.table import MODELS

if TYPE_CHECKING:
    from models.splits import SplitSpec

#: The learned parts the hybrid policy needs (retrieval and ranking); a sequence model is optional.
LEARNED: Final = tuple(name for name, e in MODELS.items() if e.kind in ("retriever", "ranker"))
SEQUENCE: Final = tuple(name for name, e in MODELS.items() if e.kind == "sequence")
BASELINES: Final = tuple(name for name, e in MODELS.items() if e.kind == "baseline")
ALL_MODELS: Final = tuple(MODELS)
HYBRID: Final = "hybrid"
#: Always fitted when the policy is trained: its own candidate sources and fallbacks.
POLICY_PARTS: Final = ("popularity", "recent_popularity", "trending", "cooccurrence")
#: The strongest simple baselines (docs/design.md §8): fitted whenever the policy is, because the gate
#: compares the policy with the best of them on the test users.
SIMPLE_BASELINES: Final = ("popularity", "recent_popularity", "trending", "item_knn_decay", "session_knn")


@dataclass(frozen=True)
class TrainParams:
    models: tuple[str, ...] = ALL_MODELS
    epochs: int = 5
    embedding_dim: int = 32
    learning_rate: float = 0.05
    ranker_learning_rate: float = 1e-3
    #: The test period (``models.splits.SplitSpec``): a date wins over a number of days, which wins over
    #: the default, the last ``test_fraction`` of the events.
    test_fraction: float = 0.1
    holdout_days: int | None = None
    test_start: str | None = None
    #: The validation period: this share of the training events, at their end. Tuning, the cold-start
    #: choice and the ranker's labels use it (``label_days`` replaces it for the ranker's labels).
    validation_fraction: float = 0.1
    label_days: int | None = None
    #: The ranker's label window is widened to at least this many days while the earlier half of the
    #: training data stays before it: on a shop whose events bunch up at the end, the last 10% of the
    #: events can be two days, too few labels to train the ranker on (measured on the demo shop:
    #: NDCG@10 for shoppers with history 0.039 with a 2.3-day window, 0.094 with a 14-day one).
    min_label_days: int = 14
    #: End of the test period (exclusive; default: the end of the data). Backtest folds set it.
    test_end: str | None = None
    #: Cut-offs of a backtest (``aisle evaluate --backtest N``); 1 = the one test period.
    backtest: int = 1
    #: Optuna trials per tuned model on the validation period.
    tuning_trials: int = 12
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
        for name in ("epochs", "embedding_dim", "k", "als_iterations", "backtest", "tuning_trials"):
            if getattr(self, name) < 1:
                raise BadInput(f"{name} must be at least 1 (got {getattr(self, name)})")
        for name in ("holdout_days", "label_days", "min_label_days"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise BadInput(f"{name} must be at least 1 (got {value})")
        self.spec  # noqa: B018  # validates the split settings
        if not 0 < self.learning_rate < 10 or not 0 < self.ranker_learning_rate < 10:
            raise BadInput("learning rates must be in (0, 10)")

    @property
    def spec(self) -> SplitSpec:
        """Where the run cuts time (test and validation periods)."""
        from models.splits import SplitSpec

        return SplitSpec(
            test_fraction=self.test_fraction,
            holdout_days=self.holdout_days,
            test_start=self.test_start,
            test_end=self.test_end,
            validation_fraction=self.validation_fraction,
        )

    @property
    def hybrid(self) -> bool:
        """Whether this run trains (and can register) the hybrid policy: it needs every learned part."""
        return set(LEARNED) <= set(self.models)

    def fitted(self) -> tuple[str, ...]:
        """Models this run fits: those asked for plus the policy's parts when the hybrid is on."""
        extra = (*POLICY_PARTS, *SIMPLE_BASELINES) if self.hybrid else ()
        return tuple(dict.fromkeys((*self.models, *extra)))

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrainParams:
        data = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__ and v is not None}
        if isinstance(data.get("models"), str):
            data["models"] = tuple(m.strip() for m in data["models"].split(",") if m.strip())
        elif "models" in data:
            data["models"] = tuple(data["models"])
        return cls(**data)
