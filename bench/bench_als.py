"""ALS training cost on Spark: seconds per iteration per 1M events, over a ~1M-event shop.

Two fits, 1 and ``--iters`` iterations, give the marginal cost of an iteration apart from the fixed
cost of a fit (building the matrix, shipping it to Spark, collecting the factors); the same-run
baseline is the popularity baseline's fit on the same events, which is the fixed part every
``ScoringRecommender`` pays. A first, uncounted fit warms the JVM: a cold one bills ~15 s of JIT
compilation to whichever fit comes first.
Shrink with ``--users/--items/--days`` on a small machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import report

from aisle.core.settings import load_settings
from feature_repo.compute.session import spark_session
from ingestion.synthetic.shop import ShopConfig, generate_shop
from models.baselines import ALSRecommender, PopularityRecommender


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100_000, help="default: ~1.08M events")
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--rank", type=int, default=32)
    args = parser.parse_args()
    shop = generate_shop(ShopConfig(users=args.users, items=args.items, days=args.days, seed=42))
    events = shop.events.select(["user_id", "item_id", "event_type"]).to_pandas()
    del shop

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(home=Path(tmp))
        spark = spark_session(settings)
        ALSRecommender(settings, rank=args.rank, max_iter=1).fit(events)  # JIT warm-up, not counted

        t = time.perf_counter()
        popularity = PopularityRecommender().fit(events)
        pop_s = time.perf_counter() - t
        one = ALSRecommender(settings, rank=args.rank, max_iter=1).fit(events)
        t = time.perf_counter()
        full = ALSRecommender(settings, rank=args.rank, max_iter=args.iters).fit(events)
        full_s = time.perf_counter() - t
        cores = spark.sparkContext.defaultParallelism

    n_events = len(events) / 1e6
    per_iter = full.fit_seconds_ / full.iterations_
    marginal = (full.fit_seconds_ - one.fit_seconds_) / max(1, full.iterations_ - 1)
    report(
        "als_fit",
        events=len(events),
        interactions=int((popularity.interactions_.data > 0).sum()),
        users=popularity.interactions_.shape[0],
        items=popularity.interactions_.shape[1],
        rank=args.rank,
        iterations=full.iterations_,
        fit_s=round(full_s, 1),
        spark_part_s=round(full.fit_seconds_, 1),
        fit_1_iter_s=round(one.fit_seconds_, 1),
        s_per_iter_per_1m_events=round(per_iter / n_events, 2),
        marginal_s_per_iter_per_1m_events=round(marginal / n_events, 2),
        popularity_fit_s=round(pop_s, 2),
        als_over_popularity=round(full_s / pop_s, 1),
        spark_master=settings.spark_master,
        spark_cores=cores,
    )


if __name__ == "__main__":
    main()
