"""Headless Chromium for the browser tests: Debian's ``chromium`` driven by Playwright (pinned in
requirements-dev.txt). ``make test`` installs the browser with apt-get when it is missing; Playwright
never downloads one here (``executable_path`` points at the system binary)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM_FLAGS = [
    "--no-sandbox",  # root in CI containers
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",  # nothing may leave the machine
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
]


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


# Module scope, not session: sync Playwright keeps an event loop running on the main thread while it
# is open, and every later test that calls asyncio.run() (the serving HTTP tests) would fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    path = chromium_path()
    if path is None:
        pytest.skip(
            "Chromium is not installed and could not be (make test runs `apt-get install chromium` when it "
            "is missing; install it by hand on other systems) — the browser tests did not run"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield instance
        finally:
            instance.close()
