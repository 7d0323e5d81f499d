"""Simulated traffic: the generated shop's shoppers call the running service and act on its answers.

Each request is one shopper (drawn from the shop, heavy users more often) asking ``/recommend`` with
their device and country; the shopper model (``ingestion.synthetic.shoppers``) decides what they click,
cart and buy from the list they got, by their latent taste; those events go back through ``/feedback``
with the answer's ``request_id`` (some carts and purchases without it, as when a shopper buys later from
the cart page). A small share of feedback batches is sent twice, as a flaky client would, so the
pipeline's de-duplication is exercised too.

Bounded in time (``minutes``) and count (``requests``), paced at ``rate`` requests/s (open loop: a slow
service falls behind the schedule rather than slowing the clients' intent), with several clients at
once. Everything random derives from ``seed``: the shoppers, the order, and each request's reaction
(keyed by the request's index), so the same service answers give the same events.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from aisle.core.errors import BadInput, ServiceUnavailable
from ingestion.synthetic.shoppers import ShopperModel

#: Share of feedback batches a client sends twice.
DUPLICATE_SHARE = 0.02


@dataclass(frozen=True)
class TrafficPlan:
    users: int = 1000
    minutes: float = 5.0
    rate: float | None = None  # None: as fast as the clients go (closed loop)
    requests: int | None = None  # default: 3 per shopper
    seed: int = 0
    concurrency: int = 8
    k: int = 10

    def __post_init__(self) -> None:
        if self.users < 1:
            raise BadInput(f"--users must be at least 1 (got {self.users})")
        if not 0 < self.minutes <= 24 * 60:
            raise BadInput(f"--minutes must be in (0, 1440] (got {self.minutes})")
        if self.rate is not None and self.rate <= 0:
            raise BadInput(f"--rate must be positive (got {self.rate})")
        if self.requests is not None and self.requests < 1:
            raise BadInput(f"--requests must be at least 1 (got {self.requests})")
        if not 1 <= self.concurrency <= 64:
            raise BadInput(f"--concurrency must be 1..64 (got {self.concurrency})")
        if not 1 <= self.k <= 100:
            raise BadInput(f"--k must be 1..100 (got {self.k})")

    @property
    def total(self) -> int:
        return self.requests if self.requests is not None else 3 * self.users


@dataclass
class Tally:
    """What the run did, counted under one lock."""

    requests: int = 0
    answered: int = 0
    failed: int = 0
    degraded: int = 0
    feedback_batches: int = 0
    feedback_failed: int = 0
    duplicate_batches: int = 0
    events: Counter[str] = field(default_factory=Counter)
    variants: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    revenue: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _events(
    model: ShopperModel, plan: TrafficPlan, index: int, user: str, answer: dict[str, Any]
) -> list[dict[str, Any]]:
    rng = np.random.default_rng([plan.seed, index])
    items = [str(i["item_id"]) for i in answer.get("items", [])]
    u = model.user_index.get(user)
    device = model.devices[u] if u is not None else None
    country = model.countries[u] if u is not None else None
    out = []
    for j, outcome in enumerate(model.react(rng, user, items)):
        event: dict[str, Any] = {
            "event_id": f"sim-{plan.seed}-{index}-{j}",
            "event_type": outcome.event_type,
            "user_id": user,
            "item_id": outcome.item_id,
            "ts": _iso_now(),
            "session_id": f"sim-{plan.seed}-{index}",
            "device": device,
            "country": country,
        }
        if outcome.value is not None and outcome.event_type in ("add_to_cart", "purchase"):
            event["value"] = round(outcome.value, 2)
            event["quantity"] = 1
        if outcome.tagged:
            event["request_id"] = answer["request_id"]
        out.append(event)
    return out


def run_traffic(
    base_url: str,
    shop_dir: Path,
    plan: TrafficPlan,
    *,
    progress: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
    timeout_s: float = 10.0,
) -> dict[str, Any]:
    """Send the planned traffic; returns counts, per-variant requests, events sent and latencies."""
    import httpx

    model = ShopperModel(shop_dir)
    rng = np.random.default_rng(plan.seed)
    n_users = min(plan.users, len(model.user_ids))
    weights = model.activity_weights(shop_dir)
    chosen = rng.choice(len(model.user_ids), n_users, replace=False, p=weights)
    visit_weights = weights[chosen] / weights[chosen].sum()
    schedule = rng.choice(chosen, plan.total, p=visit_weights)
    duplicate = rng.random(plan.total) < DUPLICATE_SHARE
    base = base_url.rstrip("/")
    _check_reachable(base, timeout_s)

    tally = Tally()
    stop = stop or threading.Event()
    started = time.monotonic()
    deadline = started + plan.minutes * 60
    next_index = [0]
    index_lock = threading.Lock()

    def take() -> int | None:
        with index_lock:
            i = next_index[0]
            if i >= plan.total or stop.is_set() or time.monotonic() >= deadline:
                return None
            next_index[0] += 1
            return i

    def worker() -> None:
        with httpx.Client(base_url=base, timeout=timeout_s) as client:
            while (i := take()) is not None:
                if plan.rate is not None:
                    wait = started + i / plan.rate - time.monotonic()
                    if wait > 0 and stop.wait(min(wait, max(deadline - time.monotonic(), 0))):
                        return
                    if time.monotonic() >= deadline:
                        return
                _one(client, model, plan, i, model.user_ids[schedule[i]], bool(duplicate[i]), tally)
                if progress is not None:
                    progress(1)

    threads = [
        threading.Thread(target=worker, name=f"traffic-{n}", daemon=True) for n in range(plan.concurrency)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.monotonic() - started
    lat = np.asarray(tally.latencies_ms) if tally.latencies_ms else np.zeros(1)
    return {
        "planned_requests": plan.total,
        "requests": tally.requests,
        "answered": tally.answered,
        "failed": tally.failed,
        "degraded": tally.degraded,
        "shoppers": n_users,
        "variants": dict(sorted(tally.variants.items())),
        "events_sent": dict(sorted(tally.events.items())),
        "revenue_sent": round(tally.revenue, 2),
        "feedback_batches": tally.feedback_batches,
        "feedback_failed": tally.feedback_failed,
        "duplicate_batches": tally.duplicate_batches,
        "errors": dict(tally.errors.most_common(5)),
        "client_p50_ms": round(float(np.percentile(lat, 50)), 2),
        "client_p99_ms": round(float(np.percentile(lat, 99)), 2),
        "seconds": round(seconds, 2),
        "requests_per_s": round(tally.requests / seconds, 1) if seconds > 0 else None,
        "stopped_early": tally.requests < plan.total,
    }


def _check_reachable(base: str, timeout_s: float) -> None:
    import httpx

    try:
        httpx.get(f"{base}/healthz", timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise ServiceUnavailable(
            f"no recommendation service answers at {base} ({type(exc).__name__}); start it with `aisle serve`"
        ) from None


def _one(
    client: Any, model: ShopperModel, plan: TrafficPlan, i: int, user: str, twice: bool, tally: Tally
) -> None:
    import httpx

    u = model.user_index[user]
    body = {
        "user_id": user,
        "k": plan.k,
        "context": {"device": model.devices[u], "country": model.countries[u]},
    }
    t0 = time.perf_counter()
    try:
        r = client.post("/recommend", json=body)
        ok = r.status_code == 200
        answer = r.json() if ok else None
        why = None if ok else f"HTTP {r.status_code}"
    except (httpx.HTTPError, ValueError) as exc:
        ok, answer, why = False, None, type(exc).__name__
    latency = (time.perf_counter() - t0) * 1000
    events = _events(model, plan, i, user, answer) if answer else []
    feedback_ok = True
    sends = 0
    if events:
        for _ in range(2 if twice else 1):
            sends += 1
            try:
                feedback_ok &= client.post("/feedback", json={"events": events}).status_code == 202
            except httpx.HTTPError:
                feedback_ok = False
    with tally.lock:
        tally.requests += 1
        tally.latencies_ms.append(latency)
        if not ok:
            tally.failed += 1
            tally.errors[str(why)] += 1
            return
        assert answer is not None
        tally.answered += 1
        tally.degraded += bool(answer.get("degraded"))
        tally.variants[str(answer.get("variant"))] += 1
        if events:
            tally.feedback_batches += sends
            tally.feedback_failed += 0 if feedback_ok else 1
            tally.duplicate_batches += sends - 1
            tally.events.update(e["event_type"] for e in events)
            tally.revenue += sum(e.get("value", 0.0) for e in events if e["event_type"] == "purchase")
