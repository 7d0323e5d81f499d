"""History is history: a public ratings log imports as it is, and a job that ingests nothing says so.

The ratings file is generated in the shape MovieLens distributes (``user_id,item_id,rating,timestamp``,
epoch seconds from the 1990s); no setting is changed for it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from aisle.app.cli import app
from aisle.core.settings import Settings, load_settings
from ingestion.importing import import_history
from ingestion.lake import EventLake, Quarantine

pytestmark = pytest.mark.integration

runner = CliRunner()


def ratings_log(path: Path, rows: int = 2_000, seed: int = 0) -> Path:
    """Ratings as MovieLens 100K ships them: 1997-1998 epoch seconds, integer stars."""
    rng = np.random.default_rng(seed)
    start = 874_724_710  # 1997-09-20
    users = rng.integers(1, 200, rows)
    items = rng.integers(1, 400, rows)
    stars = rng.integers(1, 6, rows)
    ts = start + np.sort(rng.integers(0, 215 * 86_400, rows))
    lines = ["user_id,item_id,rating,timestamp"]
    seen = set()
    for u, i, r, t in zip(users, items, stars, ts, strict=True):
        if (u, i) not in seen:
            seen.add((u, i))
            lines.append(f"{u},{i},{r},{t}")
    path.write_text("\n".join(lines) + "\n")
    return path


def last_json(output: str) -> dict[str, Any]:
    line: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return line


def test_public_ratings_log_imports_with_no_setting_changed(cli_home: Path, tmp_path: Path) -> None:
    path = ratings_log(tmp_path / "ratings.csv")
    n = len(path.read_text().splitlines()) - 1
    result = runner.invoke(app, ["data", "import", "--interactions", str(path)])
    assert result.exit_code == 0, result.output
    summary = last_json(result.stdout)
    assert summary["ok"] is True and summary["problem"] is None
    assert summary["read"] == n and summary["accepted"] == n and summary["quarantined"] == 0
    assert summary["timestamps"] == {"epoch seconds": n}
    assert summary["mapping"]["fields"]["event_type"].startswith("'rating' where rating is given")
    lake = EventLake(cli_home / "lake").read()
    assert set(lake["event_type"].to_pylist()) == {"rating"}
    assert sorted(set(lake["value"].to_pylist())) == [1.0, 2.0, 3.0, 4.0, 5.0]
    years = {t.year for t in lake["ts"].to_pylist()}
    assert years <= {1997, 1998}
    # the same file again is a success that adds nothing
    again = runner.invoke(app, ["data", "import", "--interactions", str(path)])
    assert again.exit_code == 0, again.output
    assert last_json(again.stdout)["duplicates"] == n


def test_shop_opening_still_guards_live_files(cli_home: Path, tmp_path: Path) -> None:
    """1990s events in the event schema through `ingest batch` are refused, with the setting named."""
    path = tmp_path / "old-events.csv"
    path.write_text(
        "event_id,event_type,user_id,item_id,ts\n"
        + "".join(f"e{k},view,u{k},i{k},{874_724_710 + k}\n" for k in range(10))
    )
    result = runner.invoke(app, ["ingest", "batch", str(path)])
    assert result.exit_code == 1, result.output
    summary = last_json(result.stdout)
    assert summary["ok"] is False and summary["accepted"] == 0 and summary["quarantined"] == 10
    words = " ".join(result.output.split())
    assert "ts before the shop opened ×10" in words and "AISLE_SHOP_OPENED_AT" in words
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (
            "event_id,event_type,item_id,ts\ne1,view,i1,2026-01-06T10:00:00Z\ne2,view,i1,2026-01-06T10:00:00Z\n",
            "missing column user_id ×2",
        ),
        (
            "event_id,event_type,user_id,item_id,ts\ne1,teleport,u1,i1,2026-01-06T10:00:00Z\n"
            "e2,teleport,u1,i1,2026-01-06T10:00:00Z\n",
            "event_type not in allowed set ×2",
        ),
    ],
    ids=["missing-column", "all-bad-types"],
)
def test_a_batch_that_is_all_bad_exits_1_with_the_reason(
    cli_home: Path, tmp_path: Path, content: str, reason: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    result = runner.invoke(app, ["ingest", "batch", str(path)])
    assert result.exit_code == 1, result.output
    summary = last_json(result.stdout)
    assert summary["job"] == "ingest.batch" and summary["ok"] is False
    assert summary["accepted"] == 0 and summary["quarantined"] == summary["read"] > 0
    assert summary["refused_batches"] == 1 and summary["files"][0]["ok"] is False
    words = " ".join(result.output.split())
    assert reason in words and "refused whole" in words and "AISLE_MAX_FAILURE_RATE" in words
    assert reason.split(" ×")[0] in summary["error"]
    assert "Traceback" not in result.output


def test_no_row_passing_fails_even_when_refusal_is_off(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home", max_failure_rate=1.0)
    path = tmp_path / "ratings.csv"
    path.write_text("user_id,item_id,rating,timestamp\n1,2,9,874724710\n1,3,0,874724711\n")
    summary = import_history(settings, path)
    assert summary["ok"] is False and summary["accepted"] == 0 and summary["quarantined"] == 2
    assert "no row passed validation" in summary["problem"]
    assert "value out of range 1..5 for rating ×2" in summary["problem"]


def test_dry_run_shows_the_mapping_and_writes_nothing(cli_home: Path, tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(
        "visitorid,itemid,event,timestamp,transactionid\n"
        "7,100,view,1433221332117,\n"  # RetailRocket: epoch milliseconds
        "7,100,addtocart,1433221400000,\n"
        "7,100,transaction,2015-06-02T05:30:00Z,42\n"
        "8,101,view,1433221500000,\n"
        "8,102,view,1433221600000,\n"
        "8,101,teleport,1433221700000,\n"  # 1 bad row of 6 stays under the 20% refusal threshold
    )
    result = runner.invoke(app, ["data", "import", "--interactions", str(path), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert not cli_home.exists() or {p.name for p in cli_home.iterdir()} <= {"logs"}  # only the job's log
    summary = last_json(result.stdout)
    assert summary["dry_run"] is True and summary["read"] == 6
    assert summary["would_accept"] == 5 and summary["would_quarantine"] == 1
    assert summary["top_reasons"] == {"event_type not in allowed set": 1}
    assert summary["examples"][0]["reason"] == "event_type not in allowed set"
    assert summary["timestamps"] == {"epoch milliseconds": 5, "ISO-8601 text": 1}
    fields = summary["mapping"]["fields"]
    assert fields["user_id"] == "visitorid" and fields["item_id"] == "itemid" and fields["ts"] == "timestamp"
    assert summary["mapping"]["ignored_columns"] == ["transactionid"]
    shown = " ".join(result.output.split())
    assert "user_id ← visitorid" in shown and "epoch milliseconds 5" in shown
    # the real import then does what the dry run said, mapping RetailRocket's names
    real = runner.invoke(app, ["data", "import", "--interactions", str(path)])
    assert real.exit_code == 0, real.output
    lake = EventLake(cli_home / "lake").read()
    assert sorted(lake["event_type"].to_pylist()) == ["add_to_cart", "purchase", "view", "view", "view"]
    assert Quarantine(cli_home / "quarantine").read().num_rows == 1


def test_dry_run_fails_when_the_import_would(cli_home: Path, tmp_path: Path) -> None:
    path = tmp_path / "ratings.csv"
    path.write_text("user_id,item_id,rating,timestamp\n1,2,9,874724710\n1,3,7,874724711\n")
    result = runner.invoke(app, ["data", "import", "--interactions", str(path), "--dry-run"])
    assert result.exit_code == 1, result.output
    summary = last_json(result.stdout)
    assert summary["ok"] is False and summary["would_quarantine"] == 2
    words = " ".join(result.output.split())
    assert "value out of range 1..5 for rating ×2" in words and "nothing was written" in words
    assert not cli_home.exists() or {p.name for p in cli_home.iterdir()} <= {"logs"}


def test_settings_of_the_shop_do_not_touch_imports(tmp_path: Path) -> None:
    settings: Settings = load_settings(home=tmp_path / "home", shop_opened_at="2026-01-01T00:00:00Z")
    summary = import_history(settings, ratings_log(tmp_path / "r.csv", rows=50))
    assert summary["ok"] is True and summary["quarantined"] == 0
