"""The storefront and the analyst pages in a real browser (headless Chromium), against the real service.

Everything below the page is real: the service of ``tests/integration/serving_home.py`` (a generated shop
in the lake, a trained policy registered as champion in MLflow, Redis, the Kafka-protocol broker), the
stream ingester consuming the feedback the page sends, and an MLflow evaluation run for the model
comparison. The screenshots in the README are taken here (``docs/img/``).
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aisle.core.settings import Settings
from models import registry
from models.data import load_catalog, load_events
from serving.client import call

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.e2e]

# A test run leaves the checkout as it found it: screenshots go to a temporary folder unless
# SCREENSHOTS_DIR names one (`SCREENSHOTS_DIR=docs/img make test` refreshes the README's pictures).
IMAGES = Path(os.environ.get("SCREENSHOTS_DIR") or Path(tempfile.gettempdir()) / "aisle-screenshots")
K = 10
#: Queries in words none of the catalog's items use together, and the leaf whose items answer them.
QUERIES = {
    "something to fry an egg in": "Frying Pans",
    "a detective story to read": "Crime",
    "keep my phone safe from scratches": "Phone Cases",
    "an outfit for a wedding": "Dresses",
    "beans for my espresso machine": "Coffee Beans",
}


@pytest.fixture(scope="module")
def storefront(serving_home: Settings, serving_service: Any) -> Iterator[tuple[Settings, str]]:
    """The service, a stream ingester running, and an evaluation run logged to MLflow."""
    from aisle.app.jobs import ingest
    from aisle.app.jobs import models as model_jobs
    from ingestion.stream import StopFlag

    url = serving_service.url  # its search index is loaded (serving_home.wait_for_search)
    model_jobs.evaluate(serving_home, {"models": "popularity,trending", "holdout_days": 7, "n_boot": 100})
    stop = StopFlag()
    consumer = threading.Thread(
        target=ingest.stream, args=(serving_home, {"max_seconds": 600.0}), kwargs={"stop": stop}, daemon=True
    )
    consumer.start()
    try:
        _warm_up(serving_home, url)
        yield serving_home, url
    finally:
        stop.event.set()
        consumer.join(60)


def _warm_up(home: Settings, url: str) -> None:
    """The consumer's first group join takes seconds: wait until a throwaway shopper's view is online."""
    catalog = load_catalog(home)
    assert catalog is not None
    shopper, item = f"warm-up-{uuid.uuid4().hex[:6]}", str(catalog["item_id"].iloc[0])
    event = {
        "event_id": uuid.uuid4().hex,
        "event_type": "view",
        "user_id": shopper,
        "item_id": item,
        "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    assert call(url, "/feedback", {"events": [event]}).status == 202
    deadline = time.monotonic() + 90
    while not call(url, f"/ui/api/shoppers/{shopper}").body["recent"]:
        assert time.monotonic() < deadline, "the stream ingester did not push a feedback event within 90 s"
        time.sleep(0.3)


def _shopper(home: Settings, rank: int) -> str:
    """The ``rank``-th most active shopper of the generated shop (not one a test made up)."""
    events = load_events(home)
    generated = events.loc[events["user_id"].str.match(r"u\d+$"), "user_id"]
    return str(generated.value_counts().index[rank])


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page that records console errors and uncaught exceptions; the test fails on any."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield page
        assert errors == [], errors
    finally:
        context.close()


def _cards(page: Any, selector: str) -> list[str]:
    return page.eval_on_selector_all(f"{selector} li.card", "els => els.map(e => e.dataset.item)")


def _shot(page: Any, name: str) -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(IMAGES / name), full_page=True)


def test_pick_a_shopper_and_see_k_items_with_reasons(storefront: tuple[Settings, str], page: Any) -> None:
    home, url = storefront
    page.goto(f"{url}/ui/")
    page.click("#random-shopper")
    page.wait_for_selector("#recs-list li.card")
    items = _cards(page, "#recs-list")
    assert len(items) == K and len(set(items)) == K
    reasons = page.eval_on_selector_all("#recs-list .reason", "els => els.map(e => e.textContent.trim())")
    assert len(reasons) == K and all(reasons), reasons
    assert page.inner_text("#model-version") == registry.alias_version(home, registry.CHAMPION)
    assert page.inner_text("#variant") == "champion"
    assert page.inner_text("#degraded") == "not degraded"
    shopper = page.inner_text("#current-shopper")
    assert shopper in set(load_events(home)["user_id"])  # a real shopper of the lake ...
    assert page.eval_on_selector_all("#activity-list li a", "els => els.length") > 0  # ... with history
    _shot(page, "storefront.png")

    page.click("#new-shopper")  # a shopper nobody has seen: cold-start lists, still k with reasons
    page.wait_for_function("document.getElementById('recs-heading').textContent.includes('web-')")
    assert len(_cards(page, "#recs-list")) == K
    cold = page.eval_on_selector_all("#recs-list .reason", "els => els.map(e => e.textContent.trim())")
    assert all(r.startswith(("trending", "popular")) for r in cold), cold


def test_add_to_cart_changes_the_recommendations_within_seconds(
    storefront: tuple[Settings, str], page: Any
) -> None:
    home, url = storefront
    shopper = _shopper(home, 1)
    page.goto(f"{url}/ui/")
    page.fill("#shopper-input", shopper)
    page.press("#shopper-input", "Enter")
    page.wait_for_selector("#recs-list li.card")
    assert page.inner_text("#degraded") == "not degraded"  # the shopper's own list, from their context
    before = _cards(page, "#recs-list")
    first = before[0]
    started = time.perf_counter()
    page.click(f'#recs-list li.card[data-item="{first}"] button[data-action="add_to_cart"]')
    page.wait_for_function("document.getElementById('recs-list').dataset.updated", timeout=20_000)
    seconds = time.perf_counter() - started
    after = _cards(page, "#recs-list")
    status = page.inner_text("#status")
    reached = re.search(r"online store after (\d+) ms", status)
    assert reached, status  # the event made it through Kafka and the stream ingester to Redis
    assert page.inner_text("#degraded") == "not degraded"
    assert after != before and first not in after, (before, after)  # carted: not offered again
    assert len(after) == K
    assert seconds < 10, seconds
    activity = page.eval_on_selector_all("#activity-list li", "els => els.map(e => e.textContent)")
    assert activity and activity[0].startswith("add to cart"), activity
    print(f"add to cart → online store {reached.group(1)} ms; page updated after {seconds:.2f} s")


def test_product_page_shows_details_similar_and_bought_together(
    storefront: tuple[Settings, str], page: Any
) -> None:
    home, url = storefront
    events = load_events(home)
    bought = events.loc[events["event_type"] == "purchase", "item_id"].value_counts().index[0]
    shopper = _shopper(home, 0)
    page.goto(f"{url}/ui/#user={shopper}&item={bought}")
    page.wait_for_selector("#product:not([hidden])")
    page.wait_for_selector("#similar-list li.card")
    catalog = load_catalog(home)
    assert catalog is not None
    assert page.inner_text("#product-category").endswith(
        catalog.set_index("item_id").loc[bought, "category"].rsplit(">", 1)[-1]
    )
    assert page.inner_text("#product-description")
    assert page.inner_text("#product-price").startswith("€")
    assert len(_cards(page, "#similar-list")) >= 1
    assert page.is_visible("#together-list")
    page.wait_for_selector("#recs-list li.card")
    _shot(page, "product.png")


def test_search_finds_the_right_category_for_fixed_queries(
    storefront: tuple[Settings, str], page: Any
) -> None:
    home, url = storefront
    catalog = load_catalog(home)
    assert catalog is not None
    leaf = catalog.set_index("item_id")["category"].str.rsplit(">", n=1).str[-1]
    page.goto(f"{url}/ui/")
    right: dict[str, float] = {}
    for query, wanted in QUERIES.items():
        assert (leaf == wanted).sum() >= 3, f"the test shop has too few {wanted}"
        page.fill("#search-input", query)
        page.press("#search-input", "Enter")
        page.wait_for_function(
            "q => document.getElementById('search-meta').textContent.includes(q)", arg=query
        )
        found = _cards(page, "#search-list")
        assert len(found) == K
        top = [leaf[i] for i in found[:5]]
        assert top[0] == wanted, (query, top)
        right[query] = sum(t == wanted for t in top) / 5
    assert min(right.values()) >= 0.6, right
    # with a shopper: the same query re-ranked for their taste, still answered from the right leaf
    page.fill("#shopper-input", _shopper(home, 2))
    page.press("#shopper-input", "Enter")
    page.wait_for_selector("#recs-list li.card")
    page.fill("#search-input", "something to fry an egg in")
    page.press("#search-input", "Enter")
    page.wait_for_function("document.getElementById('search-meta').textContent.includes('taste')")
    assert leaf[_cards(page, "#search-list")[0]] == "Frying Pans"
    _shot(page, "search.png")


def test_insights_render_every_chart_without_console_errors(
    storefront: tuple[Settings, str], page: Any
) -> None:
    _, url = storefront
    call(url, "/recommend", {"user_id": "insights-visitor", "k": K})  # something served for coverage
    page.goto(f"{url}/ui/insights")
    page.wait_for_selector("body[data-ready=true]", timeout=120_000)
    charts = page.eval_on_selector_all(
        "figure[data-chart]", "els => els.map(e => [e.dataset.chart, e.dataset.rendered])"
    )
    assert len(charts) == 7 and all(state == "true" for _, state in charts), charts
    marks = page.eval_on_selector_all(
        "figure[data-chart] svg", "els => els.map(e => e.querySelectorAll('circle, rect, line').length)"
    )
    assert len(marks) == 7 and min(marks) >= 2, marks  # each chart drew real marks, not an empty frame
    assert page.eval_on_selector_all("svg[role=img]", "els => els.every(e => e.getAttribute('aria-label'))")
    models = page.inner_text('figure[data-chart="models"]')
    assert "popularity" in models and "trending" in models
    links = page.inner_text("#links")
    assert "Data Docs" in links and "MLflow" in links
    _shot(page, "insights.png")
    docs = page.get_attribute("#links a:text('Data Docs')", "href")
    assert docs and call(url, docs).status == 200


def test_accessibility_basics_labels_and_keyboard(storefront: tuple[Settings, str], page: Any) -> None:
    _, url = storefront
    page.goto(f"{url}/ui/")
    unlabeled = page.eval_on_selector_all(
        "input, select, textarea",
        "els => els.filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))"
        ".map(e => e.id)",
    )
    assert unlabeled == []

    def tab_to(predicate: str, limit: int = 80) -> str:
        for _ in range(limit):
            page.keyboard.press("Tab")
            focused = f"(() => {{ const e = document.activeElement; return {predicate}; }})()"
            if page.evaluate(focused):
                return str(
                    page.evaluate("document.activeElement.id || document.activeElement.dataset.action")
                )
        raise AssertionError(f"Tab never reached an element where {predicate}")

    assert tab_to("e.id === 'search-input'") == "search-input"
    assert tab_to("e.id === 'shopper-input'") == "shopper-input"
    assert tab_to("e.id === 'random-shopper'") == "random-shopper"
    page.keyboard.press("Enter")  # the keyboard alone picks a shopper ...
    page.wait_for_selector("#recs-list li.card")
    assert tab_to("e.dataset.action === 'add_to_cart'") == "add_to_cart"  # ... and reaches add to cart
    nameless = page.eval_on_selector_all(
        "button, a", "els => els.filter(e => !(e.textContent.trim() || e.getAttribute('aria-label'))).length"
    )
    assert nameless == 0
    labels = page.eval_on_selector_all(
        "#recs-list button[data-action=add_to_cart]", "els => els.map(e => e.getAttribute('aria-label'))"
    )
    assert all(label and label.startswith("Add ") and label.endswith(" to cart") for label in labels)
