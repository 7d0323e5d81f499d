"""A synthetic shop that behaves like a real one, so models have something true to learn.

What is planted (and tested in ``tests/unit/test_synthetic.py``):

* a category tree with brands and prices; item popularity follows a power law and drifts week to week,
  new items get a launch boost, new items and new users keep arriving;
* each user has a latent taste over departments and leaves, favourite brands and a price preference;
  sessions focus on one leaf of that taste, views turn into carts and purchases at funnel rates of the
  RetailRocket kind (≈96% views, ≈2.5% carts, ≈0.8% purchases), better-fitting items convert more;
* purchases pull in companion items (phone → case), which is the "bought together" signal;
* a share of purchases is rated days later, higher ratings for better-fitting items;
* sessions follow daily and weekly seasonality; activity per user is heavy-tailed (most users have a
  handful of events, a few have hundreds).

Everything is vectorised numpy so a million events take seconds, and everything derives from one seed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from aisle.core.errors import BadInput
from ingestion.synthetic.describe import DESCRIBE_STREAM, describe_catalog
from ingestion.synthetic.funnel import Rates, assemble_events, run_funnel
from ingestion.synthetic.shift import SHIFT_STREAM, Shift, launch_items, raise_prices, shift_taste
from ingestion.synthetic.simulate import (
    DAY_US,
    Catalog,
    Period,
    Users,
    draw_catalog,
    draw_sessions,
    draw_users,
    draw_views,
)

DEFAULT_START = "2026-01-05"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ShopConfig:
    users: int = 5_000
    items: int = 1_000
    days: int = 60
    seed: int = 42
    start: str = DEFAULT_START  # first day of the simulated period (UTC date)
    sessions_per_user_day: float = 0.035  # mean activity; heavy-tailed across users
    views_per_session: float = 3.3
    cart_rate: float = 0.026  # per view, before the fit adjustment
    purchase_rate: float = 0.33  # per cart
    companion_rate: float = 0.35  # purchase pulls its companion into the basket
    rating_rate: float = 0.25  # purchases that are rated later
    wishlist_rate: float = 0.008
    remove_rate: float = 0.12  # carts that are removed again (when not bought)
    shift: str | None = None  # drift on purpose: taste, prices or new-items (ingestion.synthetic.shift)
    shift_at: int | None = None  # ... from this day of the period on (0 = the first day)

    def validate(self) -> None:
        if self.users < 1:
            raise BadInput(f"--users must be at least 1 (got {self.users})")
        if self.items < 1:
            raise BadInput(f"--items must be at least 1 (got {self.items})")
        if self.days < 1:
            raise BadInput(f"--days must be at least 1 (got {self.days})")
        if self.users * self.days > 2_000_000_000:
            raise BadInput("--users × --days is too large for one machine; generate in parts")
        try:
            start = self.start_dt
        except ValueError:
            raise BadInput(f"--start must be a date like 2026-01-05 (got {self.start!r})") from None
        self._validate_shift()
        end = start + timedelta(days=self.days)
        if end > datetime.now(UTC):
            raise BadInput(
                f"the simulated period would end in the future ({end:%Y-%m-%d}); pass an earlier --start"
            )

    def _validate_shift(self) -> None:
        from ingestion.synthetic.shift import SHIFTS

        if (self.shift is None) != (self.shift_at is None):
            raise BadInput("--shift and --shift-at go together: say what changes and from which day")
        if self.shift is not None and self.shift not in SHIFTS:
            raise BadInput(f"--shift must be one of {', '.join(SHIFTS)} (got {self.shift!r})")
        if self.shift_at is not None and not 0 < self.shift_at < self.days:
            raise BadInput(
                f"--shift-at must be a day after the first and before --days {self.days} "
                f"(got {self.shift_at})"
            )

    @property
    def start_dt(self) -> datetime:
        return datetime.fromisoformat(self.start).replace(tzinfo=UTC)


@dataclass
class Shop:
    """The generated tables plus the latent truth (kept apart: models never see it, tests do)."""

    catalog: pa.Table
    users: pa.Table
    events: pa.Table
    latent: dict[str, np.ndarray]
    config: ShopConfig

    def summary(self) -> dict[str, object]:
        counts = pc.value_counts(self.events["event_type"]).to_pylist()
        by_type = {c["values"]: c["counts"] for c in counts}
        return {
            "users": self.users.num_rows,
            "items": self.catalog.num_rows,
            "events": self.events.num_rows,
            "events_by_type": dict(sorted(by_type.items())),
            "active_users": len(pc.unique(self.events["user_id"])),
        }


# ----------------------------------------------------------------------------- the shop


def generate_shop(config: ShopConfig, progress: Progress | None = None) -> Shop:
    """Simulate the shop, one named step after another. Deterministic for a given config (seed included)."""
    config.validate()
    step = progress or (lambda _msg: None)
    rng = np.random.default_rng(config.seed)
    start_us = int(config.start_dt.timestamp() * 1_000_000)
    period = Period(start_us=start_us, end_us=start_us + config.days * DAY_US, n_weeks=(config.days + 6) // 7)
    step("catalog")
    catalog = draw_catalog(config.items, period, rng)
    step("users")
    users = draw_users(config.users, catalog, period, rng)
    step("sessions")
    sessions = draw_sessions(users, period, config.sessions_per_user_day, config.seed, rng)
    step("views")
    views = draw_views(catalog, users, sessions, period, config.views_per_session, rng)
    shift = (
        Shift.from_day(config.shift, config.shift_at, period) if config.shift and config.shift_at else None
    )
    shift_latent: dict[str, np.ndarray] = {}
    if shift is not None and shift.kind != "prices":
        step("shift")
        shift_rng = np.random.default_rng([config.seed, SHIFT_STREAM])  # the main draws stay as they were
        if shift.kind == "taste":
            views, trend = shift_taste(catalog, users, views, period, shift, shift_rng)
            shift_latent["shift_trend"] = trend.astype(np.float32)
        else:
            catalog, views = launch_items(catalog, users, views, shift, shift_rng)
    step("funnel")
    rates = Rates(
        cart=config.cart_rate,
        purchase=config.purchase_rate,
        companion=config.companion_rate,
        rating=config.rating_rate,
        wishlist=config.wishlist_rate,
        remove=config.remove_rate,
    )
    funnel = run_funnel(catalog, views, period, rates, rng)
    step("events")
    events = assemble_events(catalog, users, sessions, views, funnel, period, rates.remove, config.seed, rng)
    if shift is not None:
        if shift.kind == "prices":
            step("shift")
            catalog, events = raise_prices(catalog, events, shift)
        shift_latent["shift_at_us"] = np.array([shift.at_us], dtype=np.int64)
    step("describe")
    described = describe_catalog(catalog.table, np.random.default_rng([config.seed, DESCRIBE_STREAM]))
    return Shop(
        catalog=described,
        users=users.table,
        events=events,
        latent={**_latent_truth(catalog, users), **shift_latent},
        config=config,
    )


def _latent_truth(catalog: Catalog, users: Users) -> dict[str, np.ndarray]:
    """What tests may check models against and models never see."""
    return {
        "taste_top": users.taste_top.astype(np.float32),
        "taste_leaf": users.taste_leaf.astype(np.float32),
        "top_of_leaf": catalog.top_of_leaf,
        "item_leaf": catalog.item_leaf,
        "item_top": catalog.item_top,
        "fav_brands": users.fav_brands,
        "price_pref": users.price_pref,
        "companion_leaf": catalog.companion_leaf,
        "popularity": catalog.popularity,
        "item_brand": catalog.item_brand,
        "log_rel_price": catalog.log_rel_price,
    }


EVENT_FORMATS = ("parquet", "jsonl", "csv")


def write_shop(shop: Shop, out_dir: Path, event_format: str = "parquet") -> dict[str, str]:
    """Write catalog, users, events (+ latent truth and a manifest). Returns the written paths."""
    if event_format not in EVENT_FORMATS:
        raise BadInput(f"--format must be one of {', '.join(EVENT_FORMATS)} (got {event_format!r})")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "catalog": out_dir / "catalog.parquet",
        "users": out_dir / "users.parquet",
        "events": out_dir / f"events.{event_format}",
        "latent": out_dir / "latent.npz",
        "manifest": out_dir / "manifest.json",
    }
    pq.write_table(shop.catalog, paths["catalog"], coerce_timestamps="us")
    pq.write_table(shop.users, paths["users"], coerce_timestamps="us")
    for fmt in EVENT_FORMATS:  # a previous run in another format must not leave a stale twin behind
        stale = out_dir / f"events.{fmt}"
        if fmt != event_format and stale.exists():
            stale.unlink()
    write_events(shop.events, paths["events"])
    np.savez_compressed(paths["latent"], **shop.latent)  # type: ignore[arg-type]
    manifest = {"config": asdict(shop.config), "summary": shop.summary()}
    paths["manifest"].write_text(json.dumps(manifest, indent=2))
    return {k: str(v) for k, v in paths.items()}


def write_events(events: pa.Table, path: Path) -> None:
    """Write events as Parquet, JSON Lines or CSV, chosen by the file suffix."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        pq.write_table(events, path, coerce_timestamps="us", row_group_size=250_000)
    elif suffix == ".csv":
        import pyarrow.csv as pacsv

        pacsv.write_csv(events.set_column(4, "ts", pc.strftime(events["ts"], "%Y-%m-%dT%H:%M:%SZ")), path)
    elif suffix in (".jsonl", ".json"):
        frame = events.to_pandas()
        frame["ts"] = frame["ts"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # pandas' %S has no fraction
        frame.to_json(path, orient="records", lines=True)
    else:
        raise BadInput(f"cannot write events as {suffix!r}; use .parquet, .jsonl or .csv")
