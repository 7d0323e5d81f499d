"""Two-tower training and retrieval cost over a ~1M-event shop.

1. Training: seconds per epoch per 1M training examples and per 1M raw events. The median of the
   epochs after the first is the steady-state figure (the first also traces the training step, and
   the median damps a noisy neighbour on a small machine); the fixed part of a fit
   (queries, examples, vocabularies, item embeddings) is reported apart. The same-run baseline is
   the popularity baseline's fit on the same events.
2. Retrieval: users/s for embed + exact top-k (seen items excluded) through the exported artifact
   (SavedModel signature + faiss) against the in-memory model (same tf.function + numpy), in batches
   and one user at a time (what a request costs).

Shrink with ``--users/--items/--days`` on a small machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import report

from ingestion.synthetic.shop import ShopConfig, generate_shop
from models.baselines import PopularityRecommender
from models.two_tower import TwoTowerArtifact, TwoTowerConfig, TwoTowerRecommender, export, user_queries


def users_per_second(run: Callable[[int, int], object], batch: int, n: int) -> float:
    """Throughput of ``run(lo, hi)`` (embed + search users lo..hi) over ``n`` users, ``batch`` at a time."""
    run(0, batch)  # warm-up
    start = time.perf_counter()
    for lo in range(0, n, batch):
        run(lo, min(lo + batch, n))
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100_000, help="default: ~1.08M events")
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--search-users", type=int, default=10_000)
    args = parser.parse_args()
    shop = generate_shop(ShopConfig(users=args.users, items=args.items, days=args.days, seed=42))
    events = shop.events.select(["user_id", "item_id", "event_type", "ts"]).to_pandas()
    catalog = shop.catalog.to_pandas()
    del shop

    start = time.perf_counter()
    PopularityRecommender().fit(events, catalog)
    pop_s = time.perf_counter() - start
    config = TwoTowerConfig(epochs=args.epochs)
    model = TwoTowerRecommender(config).fit(events, catalog)
    steady = float(np.median(model.epoch_seconds_[1:] or model.epoch_seconds_))
    fixed = model.fit_seconds_ - sum(model.epoch_seconds_)
    report(
        "two_tower_fit",
        events=len(events),
        examples=model.examples_,
        items=len(model.item_ids()),
        epochs=model.epochs_run_,
        batch_size=config.batch_size,
        embedding_dim=config.embedding_dim,
        fit_s=round(model.fit_seconds_, 2),
        epoch_s=[round(s, 2) for s in model.epoch_seconds_],
        fixed_s=round(fixed, 2),
        epoch_s_per_1m_examples=round(steady / (model.examples_ / 1e6), 2),
        epoch_s_per_1m_events=round(steady / (len(events) / 1e6), 2),
        examples_per_s=round(model.examples_ / steady),
        loss=[round(x, 4) for x in model.history_],
        popularity_fit_s=round(pop_s, 3),
        fit_vs_popularity=round(model.fit_seconds_ / pop_s, 1),
    )

    queries = user_queries(events, config.history)
    n = min(args.search_users, len(queries))
    queries = queries.sample(n=n, random_state=0).reset_index(drop=True)
    seen = events.groupby("user_id")["item_id"].agg(set)
    exclude = [seen.get(u, set()) for u in queries["user_id"]]
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        export(model, Path(tmp) / "tt")
        export_s = time.perf_counter() - t
        artifact = TwoTowerArtifact.load(Path(tmp) / "tt")
        figures: dict[str, float] = {}
        sources: dict[str, TwoTowerArtifact | TwoTowerRecommender] = {"artifact": artifact, "model": model}
        for name, source in sources.items():

            def run(lo: int, hi: int, source: TwoTowerArtifact | TwoTowerRecommender = source) -> None:
                source.search(source.embed_users(queries.iloc[lo:hi]), args.k, exclude[lo:hi])

            figures[f"{name}_users_per_s_batch_1000"] = round(users_per_second(run, 1000, n))
            figures[f"{name}_users_per_s_single"] = round(users_per_second(run, 1, min(n, 500)))
        head = queries.iloc[:100]
        same = np.allclose(artifact.embed_users(head), model.embed_users(head), atol=1e-5)
    report(
        "two_tower_retrieval",
        users=n,
        k=args.k,
        items=len(model.item_ids()),
        export_s=round(export_s, 2),
        embeddings_match=bool(same),
        **figures,
        artifact_vs_model_batch=round(
            figures["artifact_users_per_s_batch_1000"] / figures["model_users_per_s_batch_1000"], 2
        ),
    )


if __name__ == "__main__":
    main()
