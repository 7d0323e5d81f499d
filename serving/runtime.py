"""What one service worker holds and does, apart from HTTP: policies, rules, the online context reader,
the exposure log, the feedback outbox, and the thread that keeps them fresh.

The BentoML class in :mod:`serving.service` is a thin shell over :class:`Runtime`, so everything here is
importable and testable without a server. Degradation lives here too:

* every online read has a timeout, and after a failure reads are skipped for ``BREAKER_S`` (answers
  say ``degraded``) so a dead Redis costs one timeout per second, not one per request; the next read
  after that tries again, so answers are normal again as soon as Redis is back;
* without a registered champion the answers come from popularity (``degraded``) until one appears;
* the refresher polls the registry alias, the materialization watermark, the rules file and the reload
  marker every ``serving_refresh_seconds``; a failed load keeps the policy in force and says why.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import pandas as pd

from aisle.core.errors import AisleError, BadInput
from aisle.core.settings import Settings
from models import registry
from models.context import from_online
from serving import metrics
from serving.catalog import CatalogHolder
from serving.experiments.routing import Route, VariantRouter
from serving.exposures import ExposureLog, exposure_record
from serving.feedback import Outbox, wire_messages
from serving.items import online_item_features
from serving.online import (
    OnlineReader,
    exposure_producer,
    kafka_producer,
    materialized_until,
    redis_reachable,
)
from serving.pipeline import STAGES, Answer, Ask, recommend
from serving.policies import PolicyHolder, ServedPolicy, load_served, with_features
from serving.rules import DEFAULT_RULES, Rules, Wishes, load_rules, rules_path
from serving.schemas import (
    FeedbackAccepted,
    FeedbackRequest,
    Filters,
    RecommendRequest,
    RecommendResponse,
    ScoredItem,
    SearchRequest,
    SearchResponse,
    SimilarRequest,
    SimilarResponse,
    typed_events,
)
from serving.search import CatalogSearch

log = logging.getLogger("bentoml.aisle.runtime")

#: How long /feedback waits for Kafka's acknowledgement before answering "spooled".
FEEDBACK_ACK_WAIT_S: Final = 0.5
RELOAD_MARKER: Final = "reload-requested"
#: How long exposure records wait to share one produce request with later ones.
EXPOSURE_LINGER_MS: Final = 50


class NotReady(AisleError):
    """No policy is loaded yet (start-up): the caller should retry (503)."""


class UnknownItem(AisleError):
    """/similar for an item the served policy does not know (404)."""


def wishes(filters: Filters) -> Wishes:
    return Wishes(
        categories=tuple(filters.categories),
        price_min=filters.price_min,
        price_max=filters.price_max,
        exclude_items=frozenset(filters.exclude_items),
    )


@dataclass
class Degraded:
    cause: str | None = None
    reason: str | None = None


class Runtime:
    """One worker's serving state. ``start()`` loads and starts threads; ``stop()`` ends them."""

    def __init__(self, settings: Settings, aliases: Sequence[str] = (registry.CHAMPION,)) -> None:
        self.settings = settings
        self.aliases = tuple(aliases)
        self.policies = PolicyHolder()
        self.reader = OnlineReader(settings)
        self.rules: Rules = DEFAULT_RULES
        self.rules_file = rules_path(settings)
        self._rules_stamp: float | None = None
        self._marker = settings.paths.serving / RELOAD_MARKER
        self._marker_seen = self._marker_stamp()
        self._watermark: datetime | None = None
        self._features_stale = False
        self._stop = threading.Event()
        self._refresher: threading.Thread | None = None
        self._load_lock = threading.Lock()
        self.exposures = ExposureLog(
            settings.exposures_topic, settings.exposure_buffer, self._producer_for_exposures
        )
        self.outbox = Outbox(
            settings.paths.serving / "outbox", settings.events_topic, self._producer_for_events
        )
        self.last_errors: dict[str, str] = {}
        self.variants = VariantRouter(settings)
        self.catalog = CatalogHolder(settings)
        self.search_index = CatalogSearch(settings)

    # ------------------------------------------------------------------ life cycle

    def start(self, *, background: bool = True) -> None:
        self._reload_rules()
        self._watermark = materialized_until(self.settings)
        for alias in self.aliases:
            self.load(alias)
        # the first Feast read of a process loads the registry and connects (~1 s): pay it before
        # readiness, not in a shopper's request (which would time out and answer degraded)
        from_online(self.settings, ["__warm_up__"], timeout_s=30.0)
        self.variants.refresh()
        self._load_experiment_aliases()
        self.catalog.refresh()
        self.search_index.update(self.catalog.snapshot, background=background)
        if background:
            self.exposures.start()
            self.outbox.start()
            self._refresher = threading.Thread(target=self._refresh_loop, name="aisle-refresh", daemon=True)
            self._refresher.start()

    def stop(self) -> None:
        self._stop.set()
        if self._refresher is not None:
            self._refresher.join(5)
        self.exposures.stop()
        self.outbox.stop()
        self.variants.close()

    def ready(self) -> bool:
        """A policy answers (champion, or popularity when none is registered) and Redis is reachable."""
        return self.policies.get(registry.CHAMPION) is not None and redis_reachable(self.settings)

    # ------------------------------------------------------------------ loading

    def load(self, alias: str, version: str | None = None) -> ServedPolicy:
        """Load ``alias`` (or a given version of it) and swap it in; the old one answers until then."""
        with self._load_lock:
            try:
                served = load_served(self.settings, alias, version, self._fresh_features)
            except Exception as exc:
                metrics.RELOADS.labels(alias, "failed").inc()
                self.last_errors[f"load:{alias}"] = str(exc)
                raise
            metrics.RELOADS.labels(alias, "ok").inc()
            self.last_errors.pop(f"load:{alias}", None)
            return self.policies.put(served)

    def _in_use(self) -> list[str]:
        return self.variants.in_use(self.aliases)

    def _load_experiment_aliases(self) -> dict[str, str]:
        return self.variants.sync(self.policies, self.load, self.aliases)

    def refresh_features(self, alias: str) -> ServedPolicy | None:
        """Lay the online store's current item features over the served policy (no model reload)."""
        with self._load_lock:
            served = self.policies.get(alias)
            if served is None or served.trained is None:
                return served
            features = self._fresh_features(served.items.ids.tolist())
            if features is None:
                return served
            return self.policies.put(with_features(served, features))

    def request_reload(self) -> None:
        """Tell the other workers (and replicas sharing AISLE_HOME) to reload too."""
        self._marker.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._marker.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(str(time.time()))
        os.replace(tmp, self._marker)
        self._marker_seen = self._marker_stamp()

    def _fresh_features(self, item_ids: list[str]) -> pd.DataFrame | None:
        """Item features from the online store (None: keep the policy's own; retried next round)."""
        try:
            features = online_item_features(self.settings, item_ids)
        except Exception as exc:
            log.warning("item features not read from the online store: %s", exc)
            self._features_stale = True
            return None
        self._features_stale = False  # an empty answer (nothing materialized yet) is not a failure
        return None if features.empty else features

    def _marker_stamp(self) -> float | None:
        try:
            return self._marker.stat().st_mtime
        except OSError:
            return None

    def _reload_rules(self) -> None:
        try:
            stamp = self.rules_file.stat().st_mtime if self.rules_file.exists() else None
        except OSError:
            stamp = None
        if stamp == self._rules_stamp and self._rules_stamp is not None:
            return
        try:
            self.rules = load_rules(self.rules_file)
            self.last_errors.pop("rules", None)
        except BadInput as exc:
            log.error("%s; the rules in force stay in force", exc)
            self.last_errors["rules"] = str(exc)
        self._rules_stamp = stamp

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self.settings.serving_refresh_seconds):
            try:
                self.refresh()
            except Exception:  # keep refreshing whatever one round hit; the round says what in the log
                log.exception("refresh round failed; the served policies stay in force")

    def refresh(self) -> dict[str, str]:
        """One round: what changed since the last, and what was reloaded because of it."""
        done: dict[str, str] = {}
        self._reload_rules()
        if self.catalog.refresh():
            self.search_index.update(self.catalog.snapshot)
            done["catalog"] = "re-read; search index follows"
        marker = self._marker_stamp()
        forced = marker is not None and marker != self._marker_seen
        self._marker_seen = marker
        watermark = materialized_until(self.settings)
        new_data = watermark is not None and watermark != self._watermark
        if self.variants.refresh():
            done.update(self._load_experiment_aliases())
        for alias in self._in_use():
            served = self.policies.get(alias)
            wanted = registry.alias_version(self.settings, alias)
            moved = served is None or (wanted is not None and wanted != served.version)
            moved = moved or (wanted is None and served is not None and not served.fallback)
            try:
                if moved or forced:
                    self.load(alias)
                    done[alias] = "new version" if moved else "reload requested"
                elif new_data or self._features_stale:
                    self.refresh_features(alias)
                    done[alias] = "new item features"
            except Exception as exc:
                log.error("refreshing %r failed, the policy in force stays: %s", alias, exc)
        if new_data:
            self._watermark = watermark
        return done

    # ------------------------------------------------------------------ requests

    def served(self, alias: str = registry.CHAMPION) -> ServedPolicy:
        served = self.policies.get(alias)
        if served is None:
            raise NotReady(f"no policy loaded for {alias!r} yet")
        return served

    def recommend(
        self, request: RecommendRequest, alias: str = registry.CHAMPION
    ) -> tuple[RecommendResponse, Degraded]:
        started = time.perf_counter()
        champion = self.served(alias)
        timings: dict[str, float] = {}
        online = self.reader.read([request.user_id])
        timings["features"] = time.perf_counter() - started
        context = request.context
        route = (
            self.variants.route(
                self.policies,
                champion,
                request.user_id,
                device=context.device,
                country=context.country,
                returning=None if online.degraded else request.user_id in online.contexts,
            )
            if alias == registry.CHAMPION
            else Route(champion, champion.alias)
        )
        served = route.served
        queries = online.contexts.queries([request.user_id])
        ask = Ask(request.user_id, request.k, wishes(request.filters))
        answer: Answer = recommend(served, self.rules, queries, [ask], timings=timings)[0]
        degraded = Degraded()
        if served.degraded:
            degraded = Degraded("no_champion", "no champion registered: popularity")
        elif online.degraded:
            degraded = Degraded("online_store", online.reason)
        response = RecommendResponse(
            request_id=uuid.uuid4().hex,
            items=[
                ScoredItem(item_id=p.item_id, score=round(p.score, 6), reason=p.reason) for p in answer.items
            ],
            model_version=served.version,
            variant=route.variant,
            degraded=degraded.cause is not None,
        )
        latency = time.perf_counter() - started
        for stage in STAGES:
            metrics.STAGE_SECONDS.labels(stage).observe(timings.get(stage, 0.0))
        if degraded.cause:
            metrics.DEGRADED.labels(degraded.cause).inc()
        self.exposures.log(
            exposure_record(
                response.request_id,
                request.user_id,
                [i.item_id for i in response.items],
                response.variant,
                response.model_version,
                latency * 1000,
                response.degraded,
                scores=[i.score for i in response.items],
                experiment=route.assignment.experiment if route.assignment else None,
                experiment_version=route.assignment.version if route.assignment else None,
                error=route.error,
                device=context.device,
                country=context.country,
            )
        )
        return response, degraded

    def similar(self, request: SimilarRequest, alias: str = registry.CHAMPION) -> SimilarResponse:
        from serving.similar import similar_items

        served = self.served(alias)
        if request.item_id not in served.items:
            raise UnknownItem(f"item {request.item_id!r} is not in the catalog the model knows")
        picks = similar_items(served, self.rules, request.item_id, request.k)
        return SimilarResponse(
            item_id=request.item_id,
            items=[ScoredItem(item_id=p.item_id, score=round(p.score, 6), reason=p.reason) for p in picks],
            model_version=served.version,
            degraded=served.degraded,
        )

    def search(self, request: SearchRequest, alias: str = registry.CHAMPION) -> SearchResponse:
        from serving.search import answer

        return answer(self.search_index, self.catalog.snapshot, self.served(alias), self.reader, request)

    def feedback(self, request: FeedbackRequest) -> FeedbackAccepted:
        try:
            typed = typed_events(request.events)
        except ValueError as exc:  # each event passed the same parser alone; a batch cannot differ
            raise BadInput(f"feedback event rejected by the parser: {exc}") from None
        position = self.outbox.put(wire_messages(typed))
        delivered = self.outbox.wait_delivered(position, FEEDBACK_ACK_WAIT_S)
        return FeedbackAccepted(accepted=typed.num_rows, spooled=0 if delivered else typed.num_rows)

    def status(self) -> dict[str, Any]:
        return {
            "policies": self.policies.snapshot(),
            "rules_file": str(self.rules_file),
            "online_store": "degraded" if self.reader.last_reason else "ok",
            "online_reason": self.reader.last_reason,
            "exposures": {
                "queued": self.exposures.queued,
                "dropped": self.exposures.dropped,
                "sent": self.exposures.sent,
            },
            "feedback": {
                "pending": self.outbox.pending(),
                "kafka": "up" if self.outbox.connected else "down",
            },
            "experiments": self.variants.status(),
            "search": self.search_index.status(),
            "errors": dict(self.last_errors),
            "pid": os.getpid(),
        }

    # ------------------------------------------------------------------ Kafka

    def _producer_for_exposures(self) -> Any:
        # exposures are read in batches (monitoring, experiments): sharing produce requests over
        # EXPOSURE_LINGER_MS costs them nothing and saves the worker CPU per answer (measured)
        return exposure_producer(
            self.settings, self.settings.exposures_topic, EXPOSURE_LINGER_MS, self.settings.exposure_buffer
        )

    def _producer_for_events(self) -> Any:
        return kafka_producer(self.settings, self.settings.events_topic, retries=0)  # the outbox retries
