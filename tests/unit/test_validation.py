"""The validation gate: nothing bad gets through, nothing is lost, and every rejection says why."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from aisle.core.schemas import CATALOG_SCHEMA, EVENT_SCHEMA, EVENT_TYPES, MAX_ID_LENGTH, REJECTED_SCHEMA
from aisle.core.settings import Settings, load_settings
from ingestion.parsing import parse_catalog, parse_events
from ingestion.synthetic.shop import ShopConfig, generate_shop
from ingestion.validation import (
    EventGate,
    GateResult,
    build_data_docs,
    validate_catalog,
    validate_events,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
START = datetime(2026, 2, 1, tzinfo=UTC)
N = 40  # one bad row in 40 stays well under the default 20% refusal threshold
ITEMS = [f"i{k:03d}" for k in range(10)]


def raw_events(n: int = N) -> dict[str, list[Any]]:
    """Good events as a CSV reader would hand them over: every value a string (or missing)."""
    types = [t for t in EVENT_TYPES if t != "rating"]
    rows: dict[str, list[Any]] = {name: [] for name in EVENT_SCHEMA.names}
    for k in range(n):
        rating = k % 5 == 4
        rows["event_id"].append(f"ev-{k:05d}")
        rows["event_type"].append("rating" if rating else types[k % len(types)])
        rows["user_id"].append(f"u{k % 7:03d}")
        rows["item_id"].append(ITEMS[k % len(ITEMS)])
        rows["ts"].append((START + timedelta(minutes=17 * k)).strftime("%Y-%m-%dT%H:%M:%SZ"))
        rows["session_id"].append(f"s-{k // 4:04d}")
        rows["value"].append(str(1 + k % 5) if rating else f"{9.99 + k:.2f}")
        rows["quantity"].append("1" if k % 3 else "")
        rows["device"].append(("mobile", "desktop")[k % 2])
        rows["country"].append(("DE", "US", "FR")[k % 3])
        rows["request_id"].append(None)
    return rows


def as_table(rows: dict[str, list[Any]]) -> pa.Table:
    return pa.table({name: pa.array(values, pa.string()) for name, values in rows.items()})


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return load_settings(home=tmp_path_factory.mktemp("aisle"))


@pytest.fixture(scope="module")
def gate(settings: Settings) -> EventGate:
    return EventGate(settings)  # built once: the context and suite are the expensive part


def check(gate: EventGate, raw: pa.Table, *, known_items: Any = ITEMS) -> tuple[GateResult, pa.Table]:
    """Parse + gate one batch the way the ingester does; assert that nothing was lost."""
    typed, parse_bad = parse_events(raw, "test.csv")
    assert typed.schema == EVENT_SCHEMA
    assert parse_bad.schema == REJECTED_SCHEMA
    assert typed.num_rows + parse_bad.num_rows == raw.num_rows
    result = gate.validate(typed, known_items=known_items, source="test.csv", now=NOW)
    assert result.good.num_rows + result.bad.num_rows == typed.num_rows
    assert result.bad.schema == REJECTED_SCHEMA
    return result, parse_bad


def rejected(result: GateResult, parse_bad: pa.Table) -> list[dict[str, Any]]:
    return pa.concat_tables([parse_bad, result.bad]).to_pylist()


def test_good_rows_pass_untouched(gate: EventGate) -> None:
    raw = as_table(raw_events())
    result, parse_bad = check(gate, raw)
    assert parse_bad.num_rows == 0 and result.bad.num_rows == 0
    assert result.failure_rate == 0.0 and not result.refused
    good = result.good
    assert good["event_id"].to_pylist() == raw["event_id"].to_pylist()
    assert good["ts"][0].as_py() == START
    assert good["quantity"].to_pylist()[:3] == [None, 1, 1]
    assert good["value"].to_pylist()[4] == 5.0
    assert result.stats["rows"] == N and result.stats["good"] == N


def test_synthetic_shop_passes_untouched(gate: EventGate) -> None:
    shop = generate_shop(ShopConfig(users=200, items=60, days=10))
    typed, parse_bad = parse_events(shop.events, "shop")
    assert parse_bad.num_rows == 0
    assert typed.equals(shop.events.cast(EVENT_SCHEMA))
    result = gate.validate(typed, known_items=set(shop.catalog["item_id"].to_pylist()), source="shop")
    assert result.bad.num_rows == 0
    assert result.good.equals(typed)


Mutation = Callable[[dict[str, list[Any]]], None]


def _set(column: str, value: Any) -> Mutation:
    def mutate(rows: dict[str, list[Any]]) -> None:
        rows[column][3] = value

    return mutate


def _rating(value: str) -> Mutation:
    def mutate(rows: dict[str, list[Any]]) -> None:
        rows["event_type"][3], rows["value"][3] = "rating", value

    return mutate


BAD_ROWS = {
    "null user_id": (_set("user_id", None), "validate", "user_id is null"),
    "wrong type value": (_set("value", "abc"), "parse", "value: cannot parse 'abc' as a number"),
    "wrong type quantity": (
        _set("quantity", "2.5"),
        "parse",
        "quantity: cannot parse '2.5' as a whole number",
    ),
    "unparseable ts": (_set("ts", "yesterday"), "parse", "ts: cannot parse 'yesterday' as a timestamp"),
    "null ts": (_set("ts", None), "validate", "ts is null"),
    "unknown event type": (_set("event_type", "teleport"), "validate", "event_type not in allowed set"),
    "rating 9": (_rating("9"), "validate", "value out of range 1..5 for rating"),
    "rating 0.5": (_rating("0.5"), "validate", "value out of range 1..5 for rating"),
    "rating without value": (_rating(""), "validate", "value missing for rating"),
    "future ts": (_set("ts", "2026-03-01T13:00:00Z"), "validate", "ts in the future"),
    "ts before shop opened": (_set("ts", "2019-12-31T23:59:59Z"), "validate", "ts before the shop opened"),
    "10 kB id": (_set("event_id", "e" * 10_000), "validate", f"event_id empty or over {MAX_ID_LENGTH} chars"),
    "empty id": (_set("user_id", ""), "validate", f"user_id empty or over {MAX_ID_LENGTH} chars"),
    "long session id": (_set("session_id", "s" * 200), "validate", f"session_id over {MAX_ID_LENGTH} chars"),
    "quantity 0": (_set("quantity", "0"), "validate", "quantity below 1"),
    "item not in catalog": (_set("item_id", "i999"), "validate", "item_id not in catalog"),
}


@pytest.mark.parametrize("case", BAD_ROWS, ids=list(BAD_ROWS))
def test_each_bad_row_is_rejected_with_its_reason(gate: EventGate, case: str) -> None:
    mutate, stage, reason = BAD_ROWS[case]
    rows = raw_events()
    mutate(rows)
    result, parse_bad = check(gate, as_table(rows))
    bad = rejected(result, parse_bad)
    assert [(b["stage"], b["reason"]) for b in bad] == [(stage, reason)]
    assert bad[0]["source"] == "test.csv"
    assert json.loads(bad[0]["row"])["event_id"] == rows["event_id"][3]
    assert result.good.num_rows == N - 1 and "ev-00003" not in result.good["event_id"].to_pylist()
    assert not result.refused


def test_every_failed_expectation_is_listed(gate: EventGate) -> None:
    rows = raw_events()
    rows["event_type"][3], rows["value"][3], rows["user_id"][3] = "rating", "9", None
    result, _ = check(gate, as_table(rows))
    assert result.bad["reason"].to_pylist() == ["user_id is null; value out of range 1..5 for rating"]
    assert result.stats["failures"] == {"user_id is null": 1, "value out of range 1..5 for rating": 1}


def test_catalog_check_is_skipped_without_a_catalog(gate: EventGate) -> None:
    rows = raw_events()
    rows["item_id"][3] = "i999"
    result, _ = check(gate, as_table(rows), known_items=None)
    assert result.bad.num_rows == 0


def test_missing_required_column_rejects_every_row(gate: EventGate) -> None:
    rows = raw_events()
    del rows["ts"]
    rows["note"] = ["extra columns are ignored"] * N
    result, parse_bad = check(gate, as_table(rows))
    assert parse_bad.num_rows == N and result.good.num_rows == 0
    assert set(parse_bad["reason"].to_pylist()) == {"missing column ts"}
    first = json.loads(parse_bad["row"][0].as_py())
    assert first["note"] == "extra columns are ignored" and "ts" not in first


def test_missing_optional_columns_are_fine(gate: EventGate) -> None:
    rows = {k: v for k, v in raw_events().items() if k in ("event_id", "user_id", "item_id", "ts")}
    rows["event_type"] = ["view"] * N  # a rating without its value would be rejected, rightly
    result, parse_bad = check(gate, as_table(rows))
    assert parse_bad.num_rows == 0 and result.good.num_rows == N
    assert result.good["value"].null_count == N


def test_batch_over_threshold_is_refused_whole(gate: EventGate, settings: Settings) -> None:
    rows = raw_events()
    for k in range(12):  # 12 / 40 = 0.30 > 0.20
        rows["event_type"][k] = "teleport"
    result, _ = check(gate, as_table(rows))
    assert result.refused and result.failure_rate == pytest.approx(0.3)
    assert result.good.num_rows == 0 and result.bad.num_rows == N  # nothing lost
    reasons = result.bad["reason"].to_pylist()
    prefix = "batch refused (failure rate 0.30 > 0.20): "
    assert all(r.startswith(prefix) for r in reasons)
    assert reasons[0] == prefix + "event_type not in allowed set"
    assert reasons[-1] == prefix + "row passed its checks"
    assert sorted(json.loads(r)["event_id"] for r in result.bad["row"].to_pylist()) == rows["event_id"]
    assert settings.max_failure_rate == 0.2


def test_upstream_rejects_count_towards_the_failure_rate(gate: EventGate) -> None:
    typed, _ = parse_events(as_table(raw_events()), "x")
    result = gate.validate(typed, source="x", now=NOW, already_rejected=N)
    assert result.refused and result.failure_rate == pytest.approx(0.5)
    assert result.bad.num_rows == N


def test_module_level_validate_events_and_empty_batches(settings: Settings) -> None:
    typed, _ = parse_events(as_table(raw_events()), "x")
    result = validate_events(typed, settings, known_items=set(ITEMS), source="x")
    assert result.good.num_rows == N and result.bad.num_rows == 0
    empty = validate_events(typed.slice(0, 0), settings)
    assert empty.good.num_rows == 0 and empty.bad.num_rows == 0 and empty.failure_rate == 0.0


EPOCH = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
EPOCH_S = int(EPOCH.timestamp())


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        (pa.array(["2024-01-02T03:04:05Z"]), EPOCH),
        (pa.array(["2024-01-02T04:04:05+01:00"]), EPOCH),
        (pa.array(["2024-01-02 03:04:05"]), EPOCH),  # naive means UTC
        (pa.array(["2024-01-02T03:04:05.250Z"]), EPOCH + timedelta(milliseconds=250)),
        (pa.array(["2024-01-02"]), datetime(2024, 1, 2, tzinfo=UTC)),
        (pa.array([str(EPOCH_S)]), EPOCH),
        (pa.array([str(EPOCH_S * 1000 + 250)]), EPOCH + timedelta(milliseconds=250)),
        (pa.array([f"{EPOCH_S}.5"]), EPOCH + timedelta(milliseconds=500)),
        (pa.array([EPOCH_S]), EPOCH),
        (pa.array([EPOCH_S * 1000]), EPOCH),
        (pa.array([EPOCH_S * 1_000_000]), EPOCH),
        (pa.array([float(EPOCH_S) * 1000]), EPOCH),
        (pa.array([EPOCH.replace(tzinfo=None)], pa.timestamp("ns")), EPOCH),
        (pa.array([EPOCH], pa.timestamp("ms", tz="Europe/Berlin")), EPOCH),
    ],
)
def test_ts_parsing(column: pa.Array, expected: datetime) -> None:
    raw = pa.table(
        {"event_id": ["e"], "event_type": ["view"], "user_id": ["u"], "item_id": ["i"], "ts": column}
    )
    typed, bad = parse_events(raw, "ts")
    assert bad.num_rows == 0
    assert typed["ts"][0].as_py() == expected


def test_ts_parsing_mixes_formats_in_one_column() -> None:
    ts = ["2024-01-02T03:04:05Z", str(EPOCH_S), str(EPOCH_S * 1000), "", "soon"]
    raw = pa.table({"event_id": list("abcde"), "event_type": ["view"] * 5, "user_id": ["u"] * 5})
    raw = raw.append_column("item_id", pa.array(["i"] * 5)).append_column("ts", pa.array(ts))
    typed, bad = parse_events(raw, "ts")
    assert typed["ts"].to_pylist() == [EPOCH, EPOCH, EPOCH, None]  # "" is missing; GE rejects the null
    assert bad["reason"].to_pylist() == ["ts: cannot parse 'soon' as a timestamp"]


def test_rejected_row_json_survives_awkward_text() -> None:
    awkward = 'quote " backslash \\ newline \n tab \t ünïcode'
    raw = pa.table(
        {
            "event_id": [awkward],
            "event_type": ["view"],
            "user_id": ["u"],
            "item_id": ["i"],
            "ts": ["never"],
            "value": pa.array([1.5]),
            "flag": pa.array([True]),
            "tags": pa.array([["a", "b"]]),
        }
    )
    _, bad = parse_events(raw, "odd")
    row = json.loads(bad["row"][0].as_py())
    assert row == {
        "event_id": awkward,
        "event_type": "view",
        "user_id": "u",
        "item_id": "i",
        "ts": "never",
        "value": 1.5,
        "flag": True,
        "tags": ["a", "b"],
    }


def catalog_rows(n: int = 30) -> dict[str, list[Any]]:
    return {
        "item_id": [f"i{k:03d}" for k in range(n)],
        "title": [f"Thing {k}" for k in range(n)],
        "category": ["Home>Kitchen>Pans"] * n,
        "brand": ["Acme"] * n,
        "price": [f"{5 + k}.99" for k in range(n)],
        "in_stock": ["true", "false"] * (n // 2),
        "created_at": ["2025-06-01T00:00:00Z"] * n,
        "description": [""] * n,
    }


def test_catalog_suite_catches_negative_price_and_duplicate_id(settings: Settings) -> None:
    rows = catalog_rows()
    rows["price"][2] = "-3.50"
    rows["item_id"][5] = rows["item_id"][4]  # duplicate
    rows["category"][6] = ""
    raw = pa.table({k: pa.array(v, pa.string()) for k, v in rows.items()})
    result = validate_catalog(raw, settings, source="catalog.csv")
    assert result.good.num_rows + result.bad.num_rows == raw.num_rows
    assert result.good.schema == CATALOG_SCHEMA
    bad_rows = [(json.loads(r["row"]), r["reason"]) for r in result.bad.to_pylist()]
    reasons = {f"{row['item_id']}@{row['title']}": reason for row, reason in bad_rows}
    assert reasons == {
        "i002@Thing 2": "price below 0",
        "i004@Thing 4": "item_id duplicated",
        "i004@Thing 5": "item_id duplicated",
        "i006@Thing 6": "category is empty",
    }
    assert not result.refused
    assert result.good["in_stock"].to_pylist()[:2] == [True, False]
    assert result.good["description"].null_count == result.good.num_rows


def test_catalog_parse_rejects_are_kept(settings: Settings) -> None:
    rows = catalog_rows()
    rows["price"][1] = "cheap"
    typed, bad = parse_catalog(pa.table({k: pa.array(v, pa.string()) for k, v in rows.items()}), "c")
    assert typed.num_rows == 29
    assert bad["reason"].to_pylist() == ["price: cannot parse 'cheap' as a number"]
    result = validate_catalog(pa.table({k: pa.array(v, pa.string()) for k, v in rows.items()}), settings)
    assert result.bad["stage"].to_pylist() == ["parse"] and result.good.num_rows == 29


def test_data_docs_index_exists_after_build(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path)
    typed, _ = parse_events(as_table(raw_events()), "docs")
    rows = raw_events()
    rows["event_type"][0] = "teleport"
    bad_typed, _ = parse_events(as_table(rows), "docs")
    validate_events(typed, settings, source="docs", docs=True)
    validate_events(bad_typed, settings, source="docs", docs=True)
    index = build_data_docs(settings)
    assert index.name == "index.html" and index.is_file()
    assert index.is_relative_to(settings.paths.gx)
    assert "aisle_events" in index.read_text()
    stored = list((settings.paths.gx / "uncommitted" / "validations").rglob("*.json"))
    assert len(stored) == 2


def test_typed_input_must_match_the_contract(gate: EventGate) -> None:
    from aisle.core.errors import BadInput

    with pytest.raises(BadInput, match="lacks required column"):
        gate.validate(pa.table({"event_id": ["e"]}))
    raw = as_table(raw_events())
    with pytest.raises(BadInput, match="run the parse stage first"):
        gate.validate(raw.set_column(4, "ts", pc.cast(raw["value"], pa.string())))
