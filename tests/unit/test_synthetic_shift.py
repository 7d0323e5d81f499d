"""The synthetic shop's drift option: validated, and leaving everything before the shift alone."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from aisle.core.errors import BadInput
from ingestion.synthetic.shop import ShopConfig, generate_shop


def test_shift_options_are_validated_and_leave_an_unshifted_shop_alone() -> None:
    for kwargs, message in (
        ({"shift": "taste"}, "go together"),
        ({"shift": "weather", "shift_at": 3}, "must be one of"),
        ({"shift": "taste", "shift_at": 10}, "before --days"),
    ):
        with pytest.raises(BadInput, match=message):
            ShopConfig(users=50, items=40, days=10, **kwargs).validate()  # type: ignore[arg-type]
    base = generate_shop(ShopConfig(users=300, items=80, days=10, seed=5))
    cut = pa.scalar(datetime(2026, 1, 12, tzinfo=UTC), pa.timestamp("us", tz="UTC"))

    def sessions_before(events: pa.Table) -> set[str]:
        return set(events.filter(pc.less(events["ts"], cut))["session_id"].to_pylist()) - {
            None
        }  # ratings: none

    for kind in ("taste", "prices", "new-items"):
        shifted = generate_shop(ShopConfig(users=300, items=80, days=10, seed=5, shift=kind, shift_at=7))
        # the same shoppers and items, the same sessions before the shift (only what follows changes)
        assert shifted.users.equals(base.users)
        assert shifted.catalog.slice(0, base.catalog.num_rows)["item_id"].equals(base.catalog["item_id"])
        assert sessions_before(shifted.events) == sessions_before(base.events) != set()
        assert "shift_at_us" in shifted.latent
    priced = generate_shop(ShopConfig(users=300, items=80, days=10, seed=5, shift="prices", shift_at=7))
    assert priced.catalog["price"].to_pylist() == pytest.approx(
        [round(p * 1.4, 2) for p in base.catalog["price"].to_pylist()]
    )
    grown = generate_shop(ShopConfig(users=300, items=80, days=10, seed=5, shift="new-items", shift_at=7))
    assert grown.catalog.num_rows > base.catalog.num_rows
