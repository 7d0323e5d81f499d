"""The Arrow executor of the expectation suite gives the verdicts and reasons Great Expectations gives,
on every case the tests use: each bad row of the gate's tests, several failures in one row, the value
bounds and trimmed ids of issue #17, null conditions, a refused batch, a generated shop, and the catalog
suite. Both gates are built from the same suite; only the executor differs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from aisle.core.settings import Settings, load_settings
from ingestion.arrow_gate import ArrowSuite, Unsupported
from ingestion.parsing import parse_events
from ingestion.synthetic.shop import ShopConfig, generate_shop
from ingestion.validation import EventGate, GateResult
from tests.unit.test_validation import BAD_ROWS, ITEMS, NOW, N, as_table, catalog_rows, raw_events


@pytest.fixture(scope="module")
def gates(tmp_path_factory: pytest.TempPathFactory) -> tuple[EventGate, EventGate]:
    home = tmp_path_factory.mktemp("arrow-gate")
    with_ge: Settings = load_settings(home=home, arrow_gate_max_rows=0)
    with_arrow: Settings = load_settings(home=home, arrow_gate_max_rows=10**9)
    return EventGate(with_ge), EventGate(with_arrow)


def verdicts(result: GateResult) -> tuple[list[tuple[str, str, int | None]], list[Any], bool, float]:
    bad = sorted(zip(result.bad["row"].to_pylist(), result.bad["reason"].to_pylist(),
                     result.bad["position"].to_pylist(), strict=True))  # fmt: skip
    return bad, result.good.to_pylist(), result.refused, result.failure_rate


def same(gates: tuple[EventGate, EventGate], raw: pa.Table, **options: Any) -> GateResult:
    ge, arrow = gates
    by_ge = ge.check(raw, source="t", now=NOW, **options)
    by_arrow = arrow.check(raw, source="t", now=NOW, **options)
    if by_ge.good.num_rows + by_ge.bad.num_rows > by_ge.stats.get("parse_rejected", 0):
        assert by_ge.stats["executor"] == "great_expectations" and by_arrow.stats["executor"] == "arrow"
    assert verdicts(by_arrow) == verdicts(by_ge)
    return by_ge


Mutation = Callable[[dict[str, list[Any]]], None]


def cases() -> dict[str, Mutation]:
    out: dict[str, Mutation] = {name: mutate for name, (mutate, _stage, _reason) in BAD_ROWS.items()}

    def several(rows: dict[str, list[Any]]) -> None:
        rows["event_type"][3], rows["value"][3], rows["user_id"][3] = "rating", "9", None
        rows["quantity"][5], rows["session_id"][5] = "0", "s" * 300

    def bounds(rows: dict[str, list[Any]]) -> None:
        rows["event_type"][1], rows["value"][1] = "purchase", "1e308"
        rows["event_type"][2], rows["value"][2] = "purchase", "-50"
        rows["quantity"][6] = "5000"
        rows["device"][7] = "d" * 65
        rows["user_id"][8] = "   "
        rows["item_id"][9] = f" {ITEMS[0]} "

    def null_type(rows: dict[str, list[Any]]) -> None:
        rows["event_type"][3], rows["value"][3] = None, "-5"  # a row condition on a null compares false

    out.update({"several failures per row": several, "value bounds and ids": bounds, "null type": null_type})
    return out


@pytest.mark.parametrize("case", list(cases()))
def test_both_executors_agree_on_every_bad_row(gates: tuple[EventGate, EventGate], case: str) -> None:
    rows = raw_events()
    cases()[case](rows)
    result = same(gates, as_table(rows), known_items=ITEMS)
    assert result.bad.num_rows >= 1 and not result.refused


def test_both_executors_agree_without_a_catalog_and_on_a_refused_batch(
    gates: tuple[EventGate, EventGate],
) -> None:
    rows = raw_events()
    rows["item_id"][3] = "i999"
    assert same(gates, as_table(rows), known_items=None).bad.num_rows == 0
    for k in range(12):
        rows["event_type"][k] = "teleport"
    assert same(gates, as_table(rows), known_items=ITEMS).refused
    assert same(gates, as_table(raw_events()), known_items=ITEMS, already_rejected=N).refused


def test_both_executors_agree_on_a_generated_shop(gates: tuple[EventGate, EventGate]) -> None:
    shop = generate_shop(ShopConfig(users=300, items=60, days=10, seed=9))
    typed, _ = parse_events(shop.events, "shop")
    ge, arrow = gates
    catalog = shop.catalog["item_id"].slice(0, 40)  # a partial catalog: many items unknown
    by_ge = ge.validate(typed, known_items=catalog, source="shop")
    by_arrow = arrow.validate(typed, known_items=catalog, source="shop")
    assert by_ge.bad.num_rows > 0
    assert verdicts(by_arrow) == verdicts(by_ge)


def test_the_catalog_suite_compiles_and_agrees(tmp_path: Path) -> None:
    from ingestion.parsing import parse_catalog
    from ingestion.validation import CatalogGate

    rows = catalog_rows()
    rows["price"][2], rows["item_id"][5], rows["category"][6] = "-3.50", rows["item_id"][4], ""
    typed, _ = parse_catalog(pa.table({k: pa.array(v, pa.string()) for k, v in rows.items()}), "c")
    gate = CatalogGate(load_settings(home=tmp_path))
    from ingestion.expectations import CATALOG_FRAME_COLUMNS

    frame = typed.select(list(CATALOG_FRAME_COLUMNS))
    by_arrow = ArrowSuite("catalog", gate._gx.suite.expectations).run(frame, {})
    by_ge = gate.validate(typed, source="c")
    flagged = {reason: sorted(index.tolist()) for reason, index in by_arrow}
    expected: dict[str, list[int]] = {}
    for row, reason in zip(by_ge.bad["position"].to_pylist(), by_ge.bad["reason"].to_pylist(), strict=True):
        for part in reason.split("; "):
            expected.setdefault(part, []).append(row)
    assert flagged == {k: sorted(v) for k, v in expected.items()}


def test_an_expectation_it_cannot_evaluate_is_refused_not_skipped() -> None:
    import great_expectations.expectations as gxe

    with pytest.raises(Unsupported, match="ExpectColumnValuesToMatchRegex"):
        ArrowSuite("x", [gxe.ExpectColumnValuesToMatchRegex(column="a", regex="^x", meta={"reason": "r"})])
