"""Pipeline jobs as plain functions returning JSON-able summaries.

The CLI, `aisle demo` and the Airflow DAGs all call these, so there is one implementation per stage.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from aisle.data.synthetic import Progress, ShopConfig, generate_shop, write_shop
from aisle.settings import Settings, ensure_home


def generate_job(
    settings: Settings,
    config: ShopConfig,
    *,
    event_format: str = "parquet",
    out: Path | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Generate a synthetic shop into ``out`` (default ``$AISLE_HOME/raw/shop``)."""
    started = time.perf_counter()
    config.validate()
    ensure_home(settings)
    shop = generate_shop(config, progress=progress)
    if progress:
        progress("write")
    paths = write_shop(shop, out or settings.paths.raw / "shop", event_format)
    return {
        **shop.summary(),
        "seed": config.seed,
        "paths": paths,
        "seconds": round(time.perf_counter() - started, 3),
    }
