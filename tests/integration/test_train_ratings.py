"""A public ratings log, as distributed, goes from the raw file to a registered policy with no setting
changed (issue #11): ``aisle data import`` takes the 1990s epoch seconds and the stars as they are
(``rating`` events), the features build counts them, and ``aisle train`` (strict global time split sized
from the data, tuning on the validation period, the gate against the strongest simple baseline) trains,
gates and registers on them. The log is generated in MovieLens's shape from a synthetic shop, so the
test needs no network.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from aisle.app.cli import app
from aisle.app.services import embedded_services
from aisle.core.settings import load_settings
from ingestion.synthetic.shop import ShopConfig, generate_shop

pytestmark = [pytest.mark.integration, pytest.mark.slow]

runner = CliRunner()


def ratings_file(path: Path) -> Path:
    """``user_id,item_id,rating,timestamp``: a shop's engagements as stars, moved back to 1997-98."""
    events = generate_shop(ShopConfig(users=700, items=150, days=40, seed=23)).events.to_pandas()
    engaged = events.loc[events["event_type"].isin(["view", "add_to_cart", "purchase"])]
    engaged = engaged.sort_values("ts").drop_duplicates(["user_id", "item_id"], keep="last")
    rng = np.random.default_rng(0)
    stars = engaged["event_type"].map({"purchase": 5, "add_to_cart": 4}).fillna(0).to_numpy()
    stars = np.where(stars > 0, stars, rng.integers(1, 4, len(engaged)))
    epoch = (
        pd.to_datetime(engaged["ts"], utc=True) - pd.Timestamp("2026-01-01", tz="UTC")
    ).dt.total_seconds()
    frame = pd.DataFrame(
        {
            "user_id": engaged["user_id"].str.replace("u", "", regex=False).astype(int),
            "item_id": engaged["item_id"].str.replace("i", "", regex=False).astype(int),
            "rating": stars.astype(int),
            "timestamp": (874_724_710 + epoch).astype(int),  # 1997-09-20 onwards
        }
    )
    frame.to_csv(path, index=False)
    return path


def last_json(output: str) -> dict[str, Any]:
    line: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return line


def test_a_raw_ratings_log_imports_and_trains_with_no_setting_changed(cli_home: Path, tmp_path: Path) -> None:
    path = ratings_file(tmp_path / "ratings.csv")
    imported = runner.invoke(app, ["data", "import", "--interactions", str(path)])
    assert imported.exit_code == 0, imported.output
    summary = last_json(imported.stdout)
    assert summary["accepted"] == len(pd.read_csv(path)) and summary["quarantined"] == 0
    settings = load_settings()
    with embedded_services(settings, kafka=False):
        built = runner.invoke(app, ["features", "build"])
        assert built.exit_code == 0, built.output
        trained = runner.invoke(
            app,
            [
                "train",
                "--epochs",
                "1",
                "--backtest",
                "2",
                "--models",
                "popularity,recent_popularity,two_tower,wide_deep",
            ],
        )
    assert trained.exit_code == 0, trained.output
    result = last_json(trained.stdout)
    prepared = result["prepare"]
    assert prepared["test_users"] >= 20 and prepared["first_ts"].startswith("1997")
    assert 0.09 < prepared["test_events"] / prepared["events"] < 0.11  # the last 10% of the events
    assert result["register"]["version"] == "1"
    gate = result["gate"]
    assert gate["strongest_baseline"] in gate["comparisons"] and gate["passed"] == (not gate["reasons"])
    # the gate also held the policy against the strongest simple baseline of the earlier fold
    (fold,) = gate["backtest"]
    assert fold["fold"] == 2 and fold["test_start"] < prepared["cutoff"]
    assert f"{fold['strongest_baseline']}@fold2" in gate["comparisons"]
    assert fold["passed"] == (not any(r.startswith("fold 2") for r in gate["reasons"]))
    # a backtest: two cut-offs rolling back, each fold fitted and tuned on its own past only
    backtested = runner.invoke(
        app, ["evaluate", "--backtest", "2", "--models", "popularity,recent_popularity"]
    )
    assert backtested.exit_code == 0, backtested.output
    folds = last_json(backtested.stdout)
    assert folds["folds_run"] == 2
    later, earlier = folds["folds"]
    assert earlier["test_end"] == later["test_start"] and later["test_start"] == prepared["cutoff"]
    assert {"popularity/all", "recent_popularity/with_history"} <= set(folds["mean_ndcg@10"])
