"""Attribution and analysis on the real lake: exposures and outcome events stored the way the service and
the ingestion gate store them, then `aisle experiment analyze`'s job. Counts reconcile exactly: every
outcome with a request id is matched to one exposure or reported unmatched, repeats count once."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aisle.core.settings import Settings, load_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    from aisle.app.jobs import shop
    from ingestion.batch import ingest_batch

    s = load_settings(home=tmp_path / "home", profile="embedded", redis_url=None, kafka_bootstrap=None)
    shop.generate(s, {"users": 200, "items": 60, "days": 5, "seed": 3})
    ingest_batch(s, [s.paths.raw / "shop"])
    return s


def test_outcomes_are_attributed_once_and_reconcile(settings: Settings, tmp_path: Path) -> None:
    from aisle.app.jobs import experiments as jobs
    from ingestion.batch import ingest_batch
    from ingestion.exposures import store
    from serving.experiments.api import create, open_store, start

    create(
        settings,
        {
            "key": "attr",
            "duration": "1h",
            "variants": [
                {"name": "control", "weight": 0.5, "strategy": "popularity"},
                {"name": "better", "weight": 0.5, "strategy": "trending"},
            ],
        },
    )
    started = start(settings, "attr")["experiment"]
    t0 = datetime.fromisoformat(started["started_at"])
    catalog = pd.read_parquet(settings.paths.raw / "shop" / "catalog.parquet")
    items = catalog["item_id"].astype(str).tolist()
    price = dict(zip(items, catalog["price"], strict=True))
    users = [f"u{i:05d}" for i in range(150)]
    rng = np.random.default_rng(0)

    exposures, events = [], []
    truth = {
        "control": {"exposures": 0, "buyers": set(), "revenue": 0.0},
        "better": {"exposures": 0, "buyers": set(), "revenue": 0.0},
    }
    for n in range(400):
        user = users[n % len(users)]
        variant = "better" if int(user[1:]) % 2 else "control"  # one variant per shopper
        shown = list(rng.choice(items, 10, replace=False))
        at = t0 + timedelta(milliseconds=n)
        request = f"req-{n}"
        exposures.append(
            {
                "request_id": request,
                "ts": at.isoformat(),
                "user_id": user,
                "items": shown,
                "variant": variant,
                "experiment": "attr",
                "experiment_version": 1,
                "model_version": "1",
                "latency_ms": float(rng.gamma(4, 5)),
                "degraded": False,
                "error": False,
            }
        )
        truth[variant]["exposures"] += 1
        p_buy = 0.5 if variant == "better" else 0.1
        if rng.random() < p_buy:
            item = shown[int(rng.integers(0, 10))]
            tagged = n % 2 == 0
            base = {"user_id": user, "item_id": item, **({"request_id": request} if tagged else {})}
            when = at + timedelta(milliseconds=100)
            events.append({**base, "event_id": f"c-{n}", "event_type": "click", "ts": when.isoformat()})
            events.append(
                {**base, "event_id": f"c2-{n}", "event_type": "click", "ts": when.isoformat()}
            )  # a second click: still one click-through
            events.append(
                {
                    **base,
                    "event_id": f"p-{n}",
                    "event_type": "purchase",
                    "value": float(price[item]),
                    "quantity": 1,
                    "ts": (when + timedelta(milliseconds=100)).isoformat(),
                }
            )
            truth[variant]["buyers"].add(user)
            truth[variant]["revenue"] += float(price[item])
    # outside the experiment: an exposure and an event tagged with its request id (matched, not counted here)
    exposures.append(
        {"request_id": "req-free", "ts": t0.isoformat(), "user_id": "u00199", "items": items[:10]}
    )
    events.append(
        {
            "event_id": "free-1",
            "event_type": "click",
            "user_id": "u00199",
            "item_id": items[0],
            "request_id": "req-free",
            "ts": (t0 + timedelta(milliseconds=200)).isoformat(),
        }
    )
    # request ids that name no exposure: reported unmatched
    for j in range(7):
        events.append(
            {
                "event_id": f"orphan-{j}",
                "event_type": "click",
                "user_id": "u00001",
                "item_id": items[1],
                "request_id": f"lost-{j}",
                "ts": (t0 + timedelta(milliseconds=300)).isoformat(),
            }
        )
    # a tagged event on an item the answer did not show: still that answer's (matched off the list)
    events.append(
        {
            "event_id": "off-1",
            "event_type": "add_to_cart",
            "user_id": users[0],
            "item_id": items[-1],
            "request_id": "req-0",
            "value": 1.0,
            "ts": (t0 + timedelta(milliseconds=400)).isoformat(),
        }
    )

    time.sleep(
        max(0.0, (t0 + timedelta(seconds=1) - datetime.now(UTC)).total_seconds())
    )  # nothing in the future
    assert store(settings, [json.dumps(e) for e in exposures], "test")["stored"] == len(exposures)
    path = tmp_path / "outcomes.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    ingest_batch(settings, [path])
    ingest_batch(settings, [path])  # delivered again: the lake keeps each event once

    summary = jobs.analyze(settings, {"key": "attr", "drain": False})
    counts = summary["attribution"]
    tagged = sum(1 for e in events if "request_id" in e)
    assert counts["outcomes_with_request_id"] == tagged
    assert counts["unmatched_request_ids"] == 7 and counts["matched_off_list"] == 1
    assert counts["matched_by_request_id"] == tagged - 7 and counts["reconciled"] is True
    assert counts["experiment_exposures"] == 400
    for variant, t in truth.items():
        v = summary["variants"][variant]
        assert v["exposures"] == t["exposures"]
        assert v["conversion"] == pytest.approx(len(t["buyers"]) / v["users"])
        assert v["revenue_per_user"] * v["users"] == pytest.approx(t["revenue"])
    frame = pd.read_parquet(summary["attribution"]["path"])
    in_experiment = [e for e in events if e["event_id"].split("-")[0] in ("c", "c2", "p")]
    assert frame["clicks"].sum() == sum(e["event_type"] == "click" for e in in_experiment)  # each event once
    assert frame["purchases"].sum() == sum(e["event_type"] == "purchase" for e in in_experiment)
    assert frame["carts"].sum() == 1  # the off-list cart
    assert summary["comparisons"]["better"]["conversion"]["significant"]
    assert Path(summary["html"]).exists() and Path(summary["json"]).exists()
    store_ = open_store(settings)
    assert len(store_.looks(store_.get("attr"))) == 1
    store_.close()
