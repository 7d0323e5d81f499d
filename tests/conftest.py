"""Fixtures shared by every test directory.

Settings are always built with a private ``AISLE_HOME`` under pytest's tmp dir, so no test reads or
writes the developer's ``var/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aisle.core.settings import Settings, load_settings
from tests.integration.serving_home import serving_home, serving_service  # noqa: F401 - shared fixtures


@pytest.fixture
def embedded_settings(tmp_path: Path) -> Settings:
    """Settings that use only embedded services, whatever AISLE_REDIS_URL / .env say on this machine."""
    return load_settings(home=tmp_path / "aisle", profile="embedded", redis_url=None, kafka_bootstrap=None)


@pytest.fixture
def cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The CLI (``get_settings``) on a private AISLE_HOME, with no other AISLE_* setting of the machine."""
    import os

    from aisle.core.settings import get_settings

    for key in [k for k in os.environ if k.startswith("AISLE_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AISLE_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    yield tmp_path / "home"
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def services_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """One Redis and one broker for the whole session, for integration tests that just need them.

    Honours AISLE_REDIS_URL / AISLE_KAFKA_BOOTSTRAP (CI runs a Redis); starts embedded servers for
    whatever is not configured and stops them at the end. Resolve addresses with
    ``aisle.app.services.redis_url(settings)`` and ``kafka_bootstrap(settings)``.
    """
    from aisle.app.services import embedded_services

    settings = load_settings(home=tmp_path_factory.mktemp("aisle-services"))
    with embedded_services(settings):
        yield settings


@pytest.fixture(scope="session", autouse=True)
def _stop_spark_at_exit() -> Iterator[None]:
    """Stop a Spark session a test left running while logging still works (py4j logs on shutdown)."""
    yield
    import logging
    import sys

    if "pyspark" in sys.modules:
        from pyspark import SparkContext

        context = SparkContext._active_spark_context  # global, unlike the thread-local active session
        if context is not None:
            context.stop()
        logging.getLogger("py4j").setLevel(logging.ERROR)  # its finalizers log after pytest closed streams
