"""Batch files through the real gate into the real lake: every row lands once or is quarantined with why."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from typer.testing import CliRunner

from aisle.app.cli import app
from aisle.core.settings import Settings, get_settings, load_settings
from ingestion.batch import ingest_batch
from ingestion.importing import import_history
from ingestion.lake import EventLake, Quarantine
from ingestion.synthetic.shop import Shop, ShopConfig, generate_shop, write_events

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def shop() -> Shop:
    return generate_shop(ShopConfig(users=300, items=80, days=6, seed=11))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(home=tmp_path / "home")


def lake_ids(settings: Settings) -> list[str]:
    return EventLake(settings.paths.lake).read()["event_id"].to_pylist()


def reasons(settings: Settings) -> list[str]:
    return Quarantine(settings.paths.quarantine).read()["reason"].to_pylist()


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_every_format_lands_once_and_reingest_adds_nothing(
    fmt: str, shop: Shop, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / f"events.{fmt}"
    write_events(shop.events, path)
    first = ingest_batch(settings, [path])
    assert first["read"] == shop.events.num_rows
    assert first["accepted"] == shop.events.num_rows and first["quarantined"] == 0
    ids = lake_ids(settings)
    assert sorted(ids) == sorted(shop.events["event_id"].to_pylist())
    again = ingest_batch(settings, [path])
    assert again["accepted"] == 0 and again["duplicates"] == shop.events.num_rows
    assert len(lake_ids(settings)) == shop.events.num_rows
    # the lake keeps the schema's microsecond UTC timestamps whatever the input format
    lake = EventLake(settings.paths.lake).read()
    assert lake.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert pc.max(lake["ts"]).equals(pc.max(shop.events["ts"]))


def test_directory_with_catalog_checks_items(shop: Shop, settings: Settings, tmp_path: Path) -> None:
    from ingestion.synthetic.shop import write_shop

    write_shop(shop, tmp_path / "shop")
    summary = ingest_batch(settings, [tmp_path / "shop"])
    assert summary["catalog"]["accepted"] == shop.catalog.num_rows
    assert summary["users"] == shop.users.num_rows
    assert summary["accepted"] == shop.events.num_rows
    assert Path(summary["data_docs"]).exists()
    # an event for an item the catalog does not know is quarantined with that reason
    stray = shop.events.slice(0, 1).to_pylist()[0] | {"event_id": "stray-1", "item_id": "i-nope"}
    stray["ts"] = stray["ts"].isoformat()
    (tmp_path / "stray.jsonl").write_text(json.dumps(stray) + "\n" + _good_lines(shop, 20))
    summary = ingest_batch(settings, [tmp_path / "stray.jsonl"])
    assert summary["quarantined"] == 1
    assert any("not in catalog" in r for r in reasons(settings))


def _good_lines(shop: Shop, n: int, offset: int = 100) -> str:
    from ingestion.stream import events_to_json_lines

    return "\n".join(b.decode() for b in events_to_json_lines(shop.events.slice(offset, n))) + "\n"


def test_every_kind_of_bad_row_is_quarantined_with_its_reason(shop: Shop, tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home", max_failure_rate=1.0)
    good = _good_lines(shop, 40)
    base = {"event_type": "view", "user_id": "u1", "item_id": "i1", "ts": "2026-01-06T10:00:00Z"}
    bad = [
        json.dumps({**base, "event_id": "b-missing"} | {"user_id": None}),
        json.dumps({**base, "event_id": "b-type", "value": "abc"}),
        json.dumps({**base, "event_id": "b-kind", "event_type": "teleport"}),
        json.dumps({**base, "event_id": "b-rating", "event_type": "rating", "value": 9}),
        json.dumps({**base, "event_id": "b-future", "ts": "2999-01-01T00:00:00Z"}),
        json.dumps({**base, "event_id": "x" * 10_000}),
        '{"event_id": "b-json", "event_type": ',
    ]
    data = (good + "\n".join(bad) + "\n").encode() + b'{"event_id": "b-bytes", "user_id": "\xff\xfe"}\n'
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(data)
    summary = ingest_batch(settings, [path])
    assert summary["read"] == 40 + len(bad) + 1
    assert summary["accepted"] == 40
    assert summary["quarantined"] == len(bad) + 1
    assert summary["read"] == summary["accepted"] + summary["duplicates"] + summary["quarantined"]
    got = Quarantine(settings.paths.quarantine).read().to_pylist()
    by_row = {r["row"]: r["reason"] for r in got}  # the original lines, as they were sent
    assert len(got) == len(bad) + 1
    expect = {
        "b-missing": "user_id",
        "b-type": "value",
        "b-kind": "event_type",
        "b-rating": "1..5",
        "b-future": "future",
        "xxxxxxxx": "over 128 chars",
        "b-json": "malformed JSON",
        "b-bytes": "UTF-8",
    }
    for marker, words in expect.items():
        matches = [reason for row, reason in by_row.items() if marker in row]
        assert matches, f"no quarantined row for {marker}"
        assert words.lower() in matches[0].lower(), (marker, matches[0])
    # the original row is kept so nothing is lost
    assert all(r["row"] for r in got) and all(r["source"] == str(path) for r in got)
    # and none of the bad ones reached the lake
    assert not set(lake_ids(settings)) & {"b-missing", "b-type", "b-kind", "b-rating", "b-future"}


def test_csv_missing_a_required_column(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "event_id,event_type,item_id,ts\ne1,view,i1,2026-01-06T10:00:00Z\ne2,view,i2,2026-01-06T10:00:00Z\n"
    )
    summary = ingest_batch(settings, [path])
    assert summary["accepted"] == 0 and summary["quarantined"] == 2
    assert all("user_id" in r for r in reasons(settings))


def test_batch_over_failure_threshold_is_refused_whole(
    shop: Shop, tmp_path: Path, settings: Settings
) -> None:
    base = {"event_type": "teleport", "user_id": "u1", "item_id": "i1", "ts": "2026-01-06T10:00:00Z"}
    bad = "\n".join(json.dumps({**base, "event_id": f"bad-{i}"}) for i in range(10))
    path = tmp_path / "mostly-bad.jsonl"
    path.write_text(_good_lines(shop, 10) + bad + "\n")
    summary = ingest_batch(settings, [path])
    assert summary["refused_batches"] == 1
    assert summary["accepted"] == 0 and summary["quarantined"] == 20
    assert all(r.startswith("batch refused") or "event_type" in r for r in reasons(settings))
    assert lake_ids(settings) == []


def test_import_own_history_is_idempotent(tmp_path: Path, settings: Settings) -> None:
    ratings = tmp_path / "ratings.csv"
    ratings.write_text(
        "userId,itemId,timestamp,rating\n"
        "1,10,1767000000,4\n"
        "1,11,1767000100000,5\n"  # epoch milliseconds
        "2,10,2026-01-03T10:00:00Z,3\n"
        "3,10,1767000300,2\n"
        "3,12,1767000400,1\n"
        "2,12,1767000200,9\n"  # rating out of range → quarantine (1 of 6 stays under the 20% threshold)
    )
    catalog = tmp_path / "items.csv"
    catalog.write_text("item_id,title\n10,Kettle\n11,Teapot\n12,Mug\n")
    first = import_history(settings, ratings, catalog)
    assert first["read"] == 6 and first["accepted"] == 5 and first["quarantined"] == 1
    assert first["catalog"]["accepted"] == 3
    lake = EventLake(settings.paths.lake).read().sort_by("value")
    assert lake["event_type"].to_pylist() == ["rating"] * 5
    assert lake["value"].to_pylist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    # epoch seconds and milliseconds both land on the right instant
    by_item = {(r["user_id"], r["item_id"]): r["ts"].timestamp() for r in lake.to_pylist()}
    assert by_item[("1", "10")] == 1767000000 and by_item[("1", "11")] == 1767000100
    again = import_history(settings, ratings, catalog)
    assert again["accepted"] == 0 and again["duplicates"] == 6
    assert EventLake(settings.paths.lake).count() == 5


def test_cli_ingest_batch_and_bad_paths(shop: Shop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AISLE_HOME", str(tmp_path / "cli-home"))
    get_settings.cache_clear()
    runner = CliRunner()
    path = tmp_path / "events.parquet"
    write_events(shop.events.slice(0, 50), path)
    result = runner.invoke(app, ["ingest", "batch", str(path)])
    assert result.exit_code == 0, result.output
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert line["job"] == "ingest.batch" and line["accepted"] == 50
    for args in (
        ["ingest", "batch", str(tmp_path / "nope.csv")],
        ["ingest", "batch", str(tmp_path / "x.xml")],
    ):
        (tmp_path / "x.xml").write_text("<x/>")
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and "Traceback" not in result.output
    missing = runner.invoke(app, ["data", "import", "--interactions", str(path.with_suffix(".csv"))])
    assert missing.exit_code == 2
    get_settings.cache_clear()
