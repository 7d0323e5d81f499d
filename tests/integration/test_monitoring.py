"""Monitoring against the real lake, Evidently workspace and MLflow store (no services needed).

A generated taste shift must drift and trigger; the same shop without it must do neither; a broken
feature must be caught; the online quality metrics must equal the offline evaluation's on the same
exposures and outcomes, and the snapshot must hold those values.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aisle.app.jobs import monitoring as jobs
from aisle.app.jobs import shop as shop_jobs
from aisle.core.settings import Settings, load_settings
from feature_repo.tables import ITEM_FEATURES, ITEM_FEATURES_SCHEMA, USER_FEATURES, USER_FEATURES_SCHEMA
from ingestion.batch import ingest_batch
from ingestion.exposures import store
from models.data import load_catalog
from models.evaluation import Split, per_user_results, precision_at_k, summarize
from monitoring.report import Reporter
from monitoring.windows import make_windows

pytestmark = pytest.mark.integration

DAYS = 21
SHOP = {"users": 3000, "items": 600, "days": DAYS, "seed": 7}
END = datetime(2026, 1, 5, tzinfo=UTC) + timedelta(days=DAYS)  # the generated period's end


def _home(tmp_path: Path, name: str, **shop: Any) -> Settings:
    settings = load_settings(home=tmp_path / name, monitor_retrain="off")
    shop_jobs.generate(settings, {**SHOP, **shop})
    ingest_batch(settings, [settings.paths.raw / "shop"])
    return settings


def _mlflow_runs(settings: Settings) -> pd.DataFrame:
    import mlflow

    mlflow.set_tracking_uri(settings.effective_mlflow_uri)
    return mlflow.search_runs(experiment_names=["aisle-monitoring"])


def test_a_taste_shift_drifts_over_threshold_and_triggers_once(tmp_path: Path) -> None:
    settings = _home(tmp_path, "shifted", shift="taste", shift_at=DAYS - 1)
    summary = jobs.report(settings, {"window": "1d", "reference": "7d"})

    assert summary["as_of"] == END.isoformat()
    assert "events" in summary["drift_detected"]
    assert summary["drift_shares"]["events"] >= settings.monitor_drift_share
    assert "top_category" in summary["drifted_columns"]["events"]
    assert summary["tests"]["failed"] >= 2  # the dataset test and at least one column's
    (decision,) = summary["triggers"]["decisions"]
    assert decision["cause"] == "drift:events" and decision["action"] == "retrain"
    reason = summary["triggers"]["reason"]
    assert reason.startswith("monitor: events drifted") and "top_category" in reason
    assert summary["triggers"]["retrain"]["how"] == "off"  # AISLE_MONITOR_RETRAIN=off: recorded only
    saved = json.loads(Path(summary["report_file"]).read_text())
    assert saved["triggers"]["reason"] == reason
    runs = _mlflow_runs(settings)
    assert runs.loc[runs["run_id"] == summary["mlflow_run_id"], "tags.aisle.retrain_reason"].item() == reason
    assert (settings.paths.evidently_workspace).is_dir()

    # the same cause on the same data again: cooling down, nothing starts
    again = jobs.report(settings, {"window": "1d", "reference": "7d"})
    assert [d["action"] for d in again["triggers"]["decisions"]] == ["cooldown"]
    assert again["triggers"]["reason"] is None and not again["triggers"]["retrain"]["started"]


def test_the_same_shop_without_a_shift_neither_drifts_nor_triggers(tmp_path: Path) -> None:
    settings = _home(tmp_path, "calm")
    summary = jobs.report(settings, {"window": "1d", "reference": "7d", "backfill": 3})
    assert summary["drift_detected"] == []
    assert summary["drift_shares"]["events"] < settings.monitor_drift_share
    assert summary["data_quality_failures"] == []
    assert summary["triggers"]["decisions"] == [] and summary["triggers"]["reason"] is None
    assert [b["as_of"] for b in summary["backfilled"]] == [
        (END - timedelta(days=2)).isoformat(),
        (END - timedelta(days=1)).isoformat(),
    ]
    assert summary["lake"]["read"] > 0 and summary["lake"]["rate"] == 0.0


def _write_feature_snapshots(settings: Settings, days: int, broken_price: bool) -> None:
    """Daily snapshot tables in the feature contract (as the Spark jobs write them), last day optionally
    with a constant item price."""
    rng = np.random.default_rng(0)
    for name, schema in ((USER_FEATURES, USER_FEATURES_SCHEMA), (ITEM_FEATURES, ITEM_FEATURES_SCHEMA)):
        for d in range(days):
            day = (END - timedelta(days=days - d)).date()
            n = 400
            cols: dict[str, Any] = {}
            for field in schema:
                if field.name in ("user_id", "item_id"):
                    cols[field.name] = [f"e{i}" for i in range(n)]
                elif field.name == "event_timestamp":
                    cols[field.name] = [
                        datetime.combine(day, datetime.min.time(), UTC) + timedelta(days=1)
                    ] * n
                elif field.name == "snapshot_date":
                    continue
                elif pa.types.is_integer(field.type):
                    cols[field.name] = rng.poisson(5, n)
                elif pa.types.is_floating(field.type):
                    cols[field.name] = rng.lognormal(3, 0.5, n)
                elif pa.types.is_boolean(field.type):
                    cols[field.name] = rng.random(n) > 0.1
                else:
                    cols[field.name] = rng.choice(["A", "B", "C"], n)
            if broken_price and name == ITEM_FEATURES and d == days - 1:
                cols["price"] = np.full(n, 9.99)
            table = pa.table(cols, schema=pa.schema([f for f in schema if f.name != "snapshot_date"]))
            out = settings.paths.features / name / f"snapshot_date={day}"
            out.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, out / "part-0.parquet")


def test_a_broken_feature_is_caught_and_holds_retraining(tmp_path: Path) -> None:
    settings = _home(tmp_path, "broken", shift="taste", shift_at=DAYS - 1)
    _write_feature_snapshots(settings, days=8, broken_price=True)
    summary = jobs.report(settings, {})
    assert summary["drift_shares"]["item_features"] is not None
    assert summary["drift_shares"]["user_features"] is not None
    assert (
        "item_features: price is constant in the current window (it varied in the reference)"
        in summary["data_quality_failures"]
    )
    assert "price" in summary["drifted_columns"]["item_features"]
    assert not any(p.startswith("user_features") for p in summary["data_quality_failures"])
    # the event stream drifted too, but retraining on a broken table would learn the breakage
    actions = {d["cause"]: d["action"] for d in summary["triggers"]["decisions"]}
    assert actions.get("drift:events") == "held"
    assert summary["triggers"]["reason"] is None


# ---------------------------------------------------------------- quality agrees with evaluation.py


class Shown:
    """A 'model' that recommends exactly what the service showed each shopper."""

    def __init__(self, lists: dict[str, list[str]]) -> None:
        self.lists = lists

    def fit(self, train: pd.DataFrame, catalog: pd.DataFrame | None = None) -> Shown:
        return self

    def recommend(self, user_ids: Any, k: int, exclude_seen: bool = True) -> dict[str, list[str]]:
        return {u: self.lists[u][:k] for u in user_ids}


def test_online_quality_equals_the_offline_evaluation_on_the_same_exposures(tmp_path: Path) -> None:
    settings = _home(tmp_path, "quality", users=600, items=200)
    catalog = load_catalog(settings)
    assert catalog is not None
    items = catalog["item_id"].tolist()
    rng = np.random.default_rng(1)
    at = END - timedelta(hours=12)
    exposures, events, relevance = [], [], []
    for n in range(120):
        user, request = f"watcher-{n}", f"req-{n}"
        shown = [str(i) for i in rng.choice(items, 10, replace=False)]
        exposures.append(
            {
                "request_id": request,
                "ts": at.isoformat(),
                "user_id": user,
                "items": [{"item_id": i, "score": float(10 - p)} for p, i in enumerate(shown)],
                "model_version": "1" if n % 2 else "2",
                "variant": "control" if n % 3 else "treatment",
                "latency_ms": 5.0,
            }
        )
        hits = rng.choice(10, int(rng.integers(1, 4)), replace=False)
        best: dict[str, int] = {}
        for j, pos in enumerate(hits):
            kind = ("view", "add_to_cart", "purchase")[int(rng.integers(0, 3))]
            grade = {"view": 1, "add_to_cart": 2, "purchase": 3}[kind]
            linked = j % 2 == 0  # half carry the request id, half are matched by shopper, item and time
            when = at + timedelta(minutes=5 + j)
            for copy in range(2 if j == 0 else 1):  # the first outcome arrives twice: counted once
                events.append(
                    {
                        "event_id": f"ev-{n}-{j}-{copy}",
                        "event_type": kind,
                        "user_id": user,
                        "item_id": shown[pos],
                        "ts": when.isoformat(),
                        **({"request_id": request} if linked else {}),
                    }
                )
            best[shown[pos]] = max(best.get(shown[pos], 0), grade)
        not_shown = next(i for i in items if i not in shown)
        events.append(
            {
                "event_id": f"ev-{n}-x",
                "event_type": "purchase",
                "user_id": user,
                "item_id": not_shown,
                "ts": (at + timedelta(minutes=1)).isoformat(),
            }
        )  # not shown: no outcome of it
        relevance += [{"user_id": user, "item_id": i, "grade": g} for i, g in best.items()]
    events.append(
        {
            "event_id": "ev-orphan",
            "event_type": "view",
            "user_id": "watcher-0",
            "item_id": items[0],
            "ts": (at + timedelta(minutes=3)).isoformat(),
            "request_id": "req-unknown",
        }
    )
    assert store(settings, [json.dumps(e) for e in exposures], "test")["stored"] == 120
    path = tmp_path / "outcomes.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    ingest_batch(settings, [path])

    w = make_windows(END, "1d", "7d")
    reporter = Reporter(settings)
    from ingestion.exposures import read_exposures

    cur = read_exposures(settings.paths.exposures, w.current_start, w.as_of)
    ref = read_exposures(settings.paths.exposures, w.reference_start, w.current_start)
    online = reporter.quality(w, cur, ref)
    join = online["current"]["join"]
    assert join["exposures"] == 120 and join["unmatched_request_ids"] == 1

    # the offline evaluation of a "model" that recommends what was shown, judged on the same outcomes
    from ingestion.lake import EventLake

    history = EventLake(settings.paths.lake).read_range("ts", w.reference_start, w.current_start).to_pandas()
    rel = pd.DataFrame(relevance)
    users = np.sort(rel["user_id"].unique())
    split = Split(
        train=history,
        test=pd.DataFrame(events),
        cutoff=pd.Timestamp(w.current_start),
        relevance=rel,
        users=users,
        with_history=users[:0],
        without_history=users,
    )
    lists = {e["user_id"]: [i["item_id"] for i in e["items"]] for e in exposures}
    per_user = per_user_results({"shown": Shown(lists)}, split, k_values=(10,), catalog=catalog)
    offline = summarize(per_user, (10,), items, n_boot=10).set_index("segment").loc["all"]
    got = online["current"]["series"]["all"]
    for stat in ("ndcg", "recall", "hit_rate", "diversity", "novelty", "coverage"):
        assert got[stat] == pytest.approx(offline[f"{stat}@10"], abs=1e-6), stat
    truth: dict[str, dict[str, int]] = {}
    for user, item, grade in rel.itertuples(index=False):
        truth.setdefault(user, {})[item] = grade
    precision = np.mean([precision_at_k(lists[u], truth[u], 10) for u in users])
    assert got["hit_rate"] == 1.0 and 0.0 < got["ndcg"] < 1.0  # every list had an outcome, none a perfect one
    assert got["precision"] == pytest.approx(precision, abs=1e-6)
    assert set(online["current"]["series"]) == {
        "all",
        "model=1",
        "model=2",
        "variant=control",
        "variant=treatment",
    }

    # the snapshot holds the same numbers under their labels (what the dashboard charts)
    from evidently.core.report import Snapshot

    from monitoring.workspace import CONCERNS, project_id

    ws = reporter.ws
    snapshot = Snapshot.load_model(ws.get_run(project_id(ws, CONCERNS["quality"]), online["snapshot"]))
    logged = {(m["config"]["name"], m["config"]["series"]): m["value"] for m in snapshot.dict()["metrics"]}
    assert logged[("ndcg@10", "all")] == pytest.approx(offline["ndcg@10"], abs=1e-6)
    assert logged[("hit_rate@10", "model=1")] == pytest.approx(
        online["current"]["series"]["model=1"]["hit_rate"]
    )


def test_exposures_travel_from_kafka_into_the_lake_once(services_settings: Settings) -> None:
    from aisle.app.services import kafka_bootstrap
    from ingestion.exposures import read_exposures
    from ingestion.kafka_io import ensure_topic, new_producer

    bootstrap = kafka_bootstrap(services_settings)
    ensure_topic(bootstrap, services_settings.exposures_topic)
    producer = new_producer(bootstrap)
    at = datetime.now(UTC).replace(microsecond=0)
    records = [
        {
            "request_id": f"k{n}",
            "ts": at.isoformat(),
            "user_id": "u1",
            "items": ["i1", "i2"],
            "scores": [0.9, 0.1],
        }
        for n in range(20)
    ]
    for record in [*records, records[0]]:  # one replayed
        producer.send(services_settings.exposures_topic, json.dumps(record).encode())
    producer.send(services_settings.exposures_topic, b"{broken")
    producer.flush()
    producer.close()
    summary = jobs.collect(services_settings, {"max_seconds": 90, "idle_seconds": 5})
    assert summary == {**summary, "read": 22, "stored": 20, "duplicates": 1, "quarantined": 1}
    stored = read_exposures(
        services_settings.paths.exposures, at - timedelta(minutes=1), at + timedelta(minutes=1)
    )
    assert sorted(stored["request_id"].to_pylist()) == sorted(r["request_id"] for r in records)
