"""Job: generate a synthetic shop (catalog, users, events and the latent truth) into the raw area."""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from datetime import timedelta
from pathlib import Path
from typing import Any

from aisle.app.jobs import Step, parse_params
from aisle.core.errors import BadInput
from aisle.core.settings import Settings, ensure_home
from ingestion.synthetic.shift import SHIFTS  # noqa: F401 - the generate_shop trigger form's choices

EVENT_FORMATS = ("parquet", "jsonl", "csv")
#: The progress stages of ``generate`` (the generator's own steps, then writing); ``shift`` only runs
#: when a drift is asked for.
GENERATE_STAGES = ("catalog", "users", "sessions", "views", "funnel", "events", "describe", "write")


@dataclass(frozen=True)
class GenerateParams:
    users: int = 5_000
    items: int = 1_000
    days: int = 60
    seed: int = 42
    start: str = "2026-01-05"
    format: str = "parquet"
    out: str | None = None  # default: $AISLE_HOME/raw/shop
    shift: str | None = None  # taste | prices | new-items: drift on purpose ...
    shift_at: int | None = None  # ... from this day of the period on

    def stages(self) -> list[str]:
        """The progress stages this generation goes through."""
        if not self.shift:
            return list(GENERATE_STAGES)
        return [*GENERATE_STAGES[:-1], "shift", GENERATE_STAGES[-1]]

    def __post_init__(self) -> None:
        if self.format not in EVENT_FORMATS:
            raise BadInput(f"--format must be one of {', '.join(EVENT_FORMATS)} (got {self.format!r})")

    def shop_config(self) -> Any:
        from ingestion.synthetic.shop import ShopConfig

        names = {f.name for f in fields(ShopConfig)}
        config = ShopConfig(**{k: v for k, v in vars(self).items() if k in names})
        config.validate()
        return config


def generate(settings: Settings, params: Any = None, *, progress: Step | None = None) -> dict[str, Any]:
    """Generate a synthetic shop into ``out`` (default ``$AISLE_HOME/raw/shop``)."""
    from ingestion.synthetic.shop import generate_shop, write_shop

    p = parse_params(GenerateParams, params)
    started = time.perf_counter()
    config = p.shop_config()
    ensure_home(settings)
    shop = generate_shop(config, progress=progress)
    if progress:
        progress("write")
    out = Path(p.out) if p.out else settings.paths.raw / "shop"
    paths = write_shop(shop, out, p.format)
    shift = None
    if config.shift:
        begins = config.start_dt + timedelta(days=config.shift_at or 0)
        shift = {"kind": config.shift, "day": config.shift_at, "from": begins.date().isoformat()}
    return {
        **shop.summary(),
        "seed": config.seed,
        "shift": shift,
        "paths": paths,
        "seconds": round(time.perf_counter() - started, 3),
    }
