"""A small shop with a registered champion, an online store and a broker: what serving tests stand on.

Real parts throughout (generated events through the ingestion gate into the lake, Feast apply and
materialization of the shoppers' recent-items view into Redis, a two-tower + Wide & Deep policy trained,
exported, registered and promoted in MLflow), only kept small: one two-tower fit, two epochs, no Spark
feature build (the ranker uses catalog item features; the serving path reads Feast exactly as in
production, it simply finds no materialized user features).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from aisle.core.settings import Settings, load_settings
from models import registry
from models.features import POLICY_SIGNALS, RANKER_SPEC, pair_frame

TOKEN = "test-admin-token"

SHOP = {"users": 600, "items": 150, "days": 21, "seed": 5}
ITEM_FEATURE_NAMES = {
    "category": "item_features__category",
    "brand": "item_features__brand",
    "price": "item_features__price",
    "in_stock": "item_features__in_stock",
}


def catalog_features(catalog: pd.DataFrame) -> pd.DataFrame:
    """The ranker's item columns from the catalog (the names Feast's item view uses)."""
    frame = catalog.set_index(catalog["item_id"].astype(str))[list(ITEM_FEATURE_NAMES)].rename(
        columns=ITEM_FEATURE_NAMES
    )
    frame["item_features__top_category"] = frame["item_features__category"].str.split(">").str[0]
    frame.index.name = "item_id"
    return frame


def build_shop(settings: Settings, shop_config: dict[str, int] | None = None) -> None:
    """Generate, ingest through the gate, apply the Feast repo, materialize the recent-items view, and
    index the catalog for search (as ``aisle demo`` does before it starts the service)."""
    from aisle.app.jobs import ingest, search, shop
    from feature_repo.compute.recent import write_user_recent
    from feature_repo.materialization import apply, materialize

    shop.generate(settings, shop_config or SHOP)
    ingest.batch(settings, {"sources": [str(settings.paths.raw / "shop")]})
    apply(settings)
    write_user_recent(settings.paths.lake, settings.paths.features)
    materialize(settings)
    search.build(settings)


def train_policy(settings: Settings, out: Path, seed: int = 0) -> Path:
    """Fit, export and return a hybrid policy directory (tower, ranker, co-occurrence, trending)."""
    from models.baselines import CooccurrenceRecommender, PopularityRecommender, TrendingRecommender
    from models.data import load_catalog, load_events
    from models.hybrid import HybridPolicy
    from models.training.params import TrainParams
    from models.training.policy import stage1_policy
    from models.training.ranker_data import window_labels
    from models.two_tower.export import export as export_tower
    from models.wide_deep.export import export as export_ranker
    from models.wide_deep.train import WideDeepConfig, WideDeepRanker

    events = load_events(settings)
    catalog = load_catalog(settings)
    assert catalog is not None
    params = TrainParams(embedding_dim=16, epochs=2, negatives=4, seed=seed)
    start = events["ts"].max() - pd.Timedelta(days=6)
    before, window = events.loc[events["ts"] < start], events.loc[events["ts"] >= start]
    stage1 = stage1_policy(before, catalog, params)
    labels = window_labels(stage1, before, window, params)
    features = catalog_features(catalog)
    frame = pair_frame(labels, pd.DataFrame(index=pd.Index([], name="user_id")), features)
    for col in ("label", *POLICY_SIGNALS):
        frame[col] = labels[col].to_numpy()
    ranker = WideDeepRanker(RANKER_SPEC, WideDeepConfig(epochs=2, batch_size=256, seed=seed)).fit(frame)
    cooc = CooccurrenceRecommender().fit(events, catalog)
    policy = HybridPolicy(
        retriever=stage1.retriever,
        ranker=ranker,
        item_ids=cooc.item_ids_,
        cooccurrence=cooc.cooccurrence_,
        trending=TrendingRecommender().fit(events, catalog).trending_,
        popularity=PopularityRecommender().fit(events, catalog).popularity_,
        item_features=features,
    )
    export_tower(stage1.retriever, out / "two_tower")
    export_ranker(ranker, out / "wide_deep")
    policy.export(out)
    return out


def register_champion(settings: Settings, policy_dir: Path, tag: str) -> str:
    """Register the policy directory as a new version and make it the champion."""
    with registry.start_run(settings, f"serving-test-{tag}") as run:
        run_id = run.info.run_id
    version = registry.register_policy(settings, run_id, policy_dir, {"aisle.run_key": tag})
    registry.promote(settings, version, f"serving test {tag}")
    return version


def home_settings(home: Path) -> Settings:
    """Settings of a test home: embedded services only, the test token, a fast refresher."""
    return load_settings(
        home=home,
        profile="embedded",
        redis_url=None,
        kafka_bootstrap=None,
        mlflow_tracking_uri=None,
        admin_token=TOKEN,
        serving_refresh_seconds=1.0,
    )


@pytest.fixture(scope="session")
def serving_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The shop, online store, broker and a champion, shared by the serving and deploy tests."""
    from aisle.app.services import embedded_services

    root = tmp_path_factory.mktemp("serving")
    settings = home_settings(root / "aisle")
    with embedded_services(settings):
        build_shop(settings)
        register_champion(settings, train_policy(settings, root / "policy"), "first")
        yield settings


@pytest.fixture(scope="session")
def serving_service(serving_home: Settings) -> Iterator[object]:
    """The service (``bentoml serve``, one worker) on ``serving_home``."""
    from aisle.app.server import running_service
    from aisle.app.services import free_port

    with running_service(serving_home, free_port()) as running:
        wait_for_search(running.url)
        yield running


def wait_for_search(url: str, timeout_s: float = 240.0) -> None:
    """Until the worker has loaded the catalog's search index (it loads it beside start-up)."""
    import time

    from serving.client import call

    deadline = time.monotonic() + timeout_s
    while not call(url, "/ui/api/status").body["search"]["ready"]:
        assert time.monotonic() < deadline, f"the service loaded no search index within {timeout_s:.0f} s"
        time.sleep(0.5)
