"""Every file of a training run, named once, and the run's manifest.

A run lives under ``$AISLE_HOME/models/runs/<run_key>/``; the refit on all data that ``register`` does
lives in the same layout under ``final/``. The stages, the demo and ``aisle.app.jobs.models.latest_run``
ask this module for paths instead of spelling file names.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aisle.core.errors import BadInput
from aisle.core.settings import Settings
from models.training.params import TrainParams


def runs_root(settings: Settings) -> Path:
    return settings.paths.models / "runs"


@dataclass(frozen=True)
class RunLayout:
    """The directory of one run (or of its ``final`` refit) and the name of everything in it."""

    root: Path

    @classmethod
    def of(cls, settings: Settings, run_key: str) -> RunLayout:
        return cls(runs_root(settings) / run_key)

    @classmethod
    def latest(cls, settings: Settings) -> RunLayout:
        """The newest run on disk (run keys sort by time)."""
        root = runs_root(settings)
        runs = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        if not runs:
            raise BadInput(f"no training run under {root}; run `aisle train` first")
        return cls(runs[-1])

    @property
    def run_key(self) -> str:
        return self.root.name

    # -- the manifest and the run's results
    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def comparison(self) -> Path:
        return self.root / "comparison.csv"

    @property
    def gate(self) -> Path:
        return self.root / "gate.json"

    # -- data the stages hand each other
    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def train_events(self) -> Path:
        return self.data / "train.parquet"

    @property
    def test_events(self) -> Path:
        return self.data / "test.parquet"

    @property
    def catalog(self) -> Path:
        return self.data / "catalog.parquet"

    @property
    def ranker_set(self) -> Path:
        return self.data / "ranker.parquet"

    @property
    def ranker_info(self) -> Path:
        return self.data / "ranker.json"

    @property
    def tuning(self) -> Path:
        """What ``models.tuning.tune`` decided on the validation period."""
        return self.data / "tuning.json"

    @property
    def item_signals(self) -> Path:
        """The policy's item recency signals (``models.policy_signals``) as of the training data's end."""
        return self.data / "item_signals.parquet"

    @property
    def user_features(self) -> Path:
        return self.data / "user_features.parquet"

    @property
    def item_features(self) -> Path:
        return self.data / "item_features.parquet"

    # -- fitted models and their scores
    @property
    def models(self) -> Path:
        return self.root / "models"

    def model_dir(self, name: str) -> Path:
        return self.models / name

    def model_stats(self, name: str) -> Path:
        return self.model_dir(name) / "stats.json"

    def per_user(self, name: str) -> Path:
        """Per-user metrics of one model on the holdout."""
        return self.models / f"per_user_{name}.parquet"

    # -- the refit on all data, and the exported policy
    @property
    def final(self) -> RunLayout:
        return RunLayout(self.root / "final")

    @property
    def policy(self) -> Path:
        return self.root / "policy"


@dataclass
class RunState:
    """The run's manifest (``state.json``): what each stage recorded for the next."""

    run_key: str
    mlflow_run_id: str
    params: dict[str, Any]
    cutoff: str
    stages: dict[str, Any] = field(default_factory=dict)

    def save(self, layout: RunLayout) -> None:
        layout.state.write_text(json.dumps(asdict(self), indent=2, default=str))

    @classmethod
    def load(cls, layout: RunLayout) -> RunState:
        if not layout.state.exists():
            raise BadInput(f"{layout.root} is not a prepared training run (no state.json)")
        return cls(**json.loads(layout.state.read_text()))

    @classmethod
    def open(cls, settings: Settings, run_key: str) -> tuple[RunLayout, RunState]:
        """A prepared run's layout and manifest (what every stage after ``prepare`` starts from)."""
        layout = RunLayout.of(settings, run_key)
        return layout, cls.load(layout)

    def record(self, layout: RunLayout, stage: str, summary: dict[str, Any]) -> dict[str, Any]:
        """Keep what a stage decided for the next ones; returns the summary."""
        self.stages[stage] = summary
        self.save(layout)
        return summary

    @property
    def train_params(self) -> TrainParams:
        return TrainParams.from_dict(self.params)
