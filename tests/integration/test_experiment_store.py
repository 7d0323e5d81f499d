"""The experiment store on embedded SQLite and on a real PostgreSQL: lifecycle, refusals, no partial writes.

PostgreSQL: a database of its own is created on the server at ``TEST_POSTGRES_URL`` (default: this
machine's 127.0.0.1:5432, trust auth, user postgres) and dropped afterwards. Where no PostgreSQL answers,
those cases are skipped with the reason; SQLite always runs.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from aisle.core.errors import BadInput
from serving.experiments.assignment import Assigner
from serving.experiments.spec import parse_spec
from serving.experiments.store import BUCKETS, DRAFT, RUNNING, STOPPED, ExperimentStore

pytestmark = pytest.mark.integration
ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    name = f"aisle_exp_test_{secrets.token_hex(4)}"
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.skip(f"no PostgreSQL at {ADMIN_URL} ({exc.orig})")
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ExperimentStore]:
    if request.param == "sqlite":
        s = ExperimentStore(f"sqlite:///{tmp_path / 'experiments.db'}")
    else:
        url = request.getfixturevalue("postgres_url")
        s = ExperimentStore(url)
        with s.engine.begin() as conn:  # each test starts from empty tables
            for table in ("aisle_experiment_looks", "aisle_experiments", "aisle_experiment_writes"):
                conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
        s = ExperimentStore(url)
    try:
        yield s
    finally:
        s.close()


def spec(key: str = "exp", **extra: object) -> object:
    data: dict[str, object] = {
        "key": key,
        "variants": [
            {"name": "control", "weight": 0.5, "strategy": "popularity"},
            {"name": "treatment", "weight": 0.5, "alias": "champion"},
        ],
    }
    data.update(extra)
    return parse_spec(data)


ALIASES = {"champion", "challenger"}


def test_lifecycle_draft_running_stopped_and_versions(store: ExperimentStore) -> None:
    e = store.create(spec(), ALIASES)  # type: ignore[arg-type]
    assert (e.version, e.status, e.bucket_lo) == (1, DRAFT, None)
    redefined = store.create(spec(description="v1 again"), ALIASES)  # type: ignore[arg-type]
    assert (redefined.version, redefined.salt != "") == (1, True)  # a draft is redefined in place
    running = store.start("exp")
    assert (running.status, running.bucket_lo, running.bucket_hi) == (RUNNING, 0, BUCKETS)
    assert running.started_at is not None

    with pytest.raises(BadInput, match=r"running.*cannot change"):
        store.create(
            spec(
                variants=[
                    {"name": "a", "weight": 0.9, "strategy": "popularity"},
                    {"name": "b", "weight": 0.1, "strategy": "trending"},
                ]
            ),
            ALIASES,
        )  # type: ignore[arg-type]
    assert [v.status for v in store.versions("exp")] == [RUNNING]  # nothing written
    assert store.get("exp").salt == running.salt

    stopped = store.stop("exp")
    assert stopped.status == STOPPED and stopped.stopped_at is not None
    with pytest.raises(BadInput, match="stopped"):
        store.start("exp")
    v2 = store.create(spec(), ALIASES)  # type: ignore[arg-type]
    assert (v2.version, v2.status) == (2, DRAFT)
    assert [e.version for e in store.list_latest()] == [2]


def test_unknown_alias_is_refused_and_nothing_is_stored(store: ExperimentStore) -> None:
    bad = parse_spec(
        {
            "key": "x",
            "variants": [
                {"name": "a", "weight": 0.5, "alias": "champion"},
                {"name": "b", "weight": 0.5, "alias": "nightly"},
            ],
        }
    )
    with pytest.raises(BadInput, match=r"unknown model alias.*nightly"):
        store.create(bad, ALIASES)
    assert store.versions("x") == []


def test_two_running_experiments_cannot_claim_the_same_traffic(store: ExperimentStore) -> None:
    store.create(spec("a", coverage=0.6), ALIASES)  # type: ignore[arg-type]
    store.create(spec("b", coverage=0.6), ALIASES)  # type: ignore[arg-type]
    store.create(spec("c", coverage=0.4), ALIASES)  # type: ignore[arg-type]
    a = store.start("a")
    with pytest.raises(BadInput, match="claim the same traffic"):
        store.start("b")
    assert store.get("b").status == DRAFT and store.get("b").bucket_lo is None  # no partial write
    c = store.start("c")
    assert (a.bucket_lo, a.bucket_hi, c.bucket_lo, c.bucket_hi) == (0, 6000, 6000, 10000)
    assert {e.key for e in store.running()} == {"a", "c"}


def test_overlapping_layers_are_refused_disjoint_targeting_is_not(store: ExperimentStore) -> None:
    store.create(spec("web", layer="one", targeting={"devices": ["desktop"]}), ALIASES)  # type: ignore[arg-type]
    store.create(spec("all", layer="two"), ALIASES)  # type: ignore[arg-type]
    store.create(spec("phones", layer="two", targeting={"devices": ["mobile", "tablet"]}), ALIASES)  # type: ignore[arg-type]
    store.start("web")
    with pytest.raises(BadInput, match="overlaps running experiment 'web'"):
        store.start("all")
    assert store.get("all").status == DRAFT
    assert store.start("phones").status == RUNNING


def test_a_user_forced_into_two_running_experiments_is_refused(store: ExperimentStore) -> None:
    store.create(spec("a", coverage=0.5, overrides={"qa-1": "treatment"}), ALIASES)  # type: ignore[arg-type]
    store.create(spec("b", coverage=0.5, overrides={"qa-1": "control"}), ALIASES)  # type: ignore[arg-type]
    store.start("a")
    with pytest.raises(BadInput, match="qa-1"):
        store.start("b")


def test_concurrent_starts_cannot_both_claim_the_layer(store: ExperimentStore, tmp_path: Path) -> None:
    """Two processes' worth of connections starting colliding experiments at once: exactly one wins."""
    store.create(spec("left", coverage=0.7), ALIASES)  # type: ignore[arg-type]
    store.create(spec("right", coverage=0.7), ALIASES)  # type: ignore[arg-type]
    other = ExperimentStore(store.url)
    barrier = threading.Barrier(2)
    results: dict[str, str] = {}

    def go(s: ExperimentStore, key: str) -> None:
        barrier.wait()
        try:
            s.start(key)
            results[key] = "started"
        except BadInput:
            results[key] = "refused"

    threads = [
        threading.Thread(target=go, args=(store, "left")),
        threading.Thread(target=go, args=(other, "right")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    other.close()
    assert sorted(results.values()) == ["refused", "started"]
    assert len(store.running()) == 1


def test_assignments_survive_a_fresh_store_connection(store: ExperimentStore) -> None:
    store.create(spec("sticky", coverage=0.8), ALIASES)  # type: ignore[arg-type]
    store.start("sticky")
    users = [f"u{i}" for i in range(2000)]
    before = Assigner(store.running())
    first = [a.variant if (a := before.assign(u)) else None for u in users]
    again = ExperimentStore(store.url)
    after = Assigner(again.running())
    second = [a.variant if (a := after.assign(u)) else None for u in users]
    again.close()
    assert first == second
    assert 0.75 < sum(v is not None for v in first) / len(users) < 0.85


def test_looks_are_recorded(store: ExperimentStore) -> None:
    store.create(spec(), ALIASES)  # type: ignore[arg-type]
    exp = store.start("exp")
    store.record_look(exp, 0.25, 100)
    store.record_look(exp, 0.5, 180)
    assert [(look.fraction, look.users) for look in store.looks(exp)] == [(0.25, 100), (0.5, 180)]


def test_an_unreachable_database_is_one_clear_error(tmp_path: Path) -> None:
    from aisle.core.errors import ServiceUnavailable

    s = ExperimentStore("postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(ServiceUnavailable, match="experiment store"):
        s.list_latest()


def test_the_live_snapshot_follows_the_store_and_survives_its_outage(tmp_path: Path) -> None:
    from aisle.core.settings import load_settings
    from serving.experiments.live import LiveExperiments

    settings = load_settings(home=tmp_path / "home", experiments_db_url=f"sqlite:///{tmp_path / 'live.db'}")
    store = ExperimentStore(settings.experiments_db_url or "")
    live = LiveExperiments(settings)
    assert live.refresh() is False and live.assigner.assign("u1") is None
    store.create(spec("live"), ALIASES)  # type: ignore[arg-type]
    store.start("live")
    assert live.refresh() is True and live.aliases == {"champion"}
    before = [live.assigner.assign(f"u{i}") for i in range(200)]
    assert all(a is not None and a.experiment == "live" for a in before)
    assert live.refresh() is False  # nothing changed: the same snapshot
    live.close()  # the database goes away: its file is replaced by a directory SQLite cannot open
    (tmp_path / "live.db").rename(tmp_path / "moved.db")
    (tmp_path / "live.db").mkdir()
    assert live.refresh() is False and "does not answer" in (live.last_error or "")
    assert [live.assigner.assign(f"u{i}") for i in range(200)] == before  # assignments do not depend on it
    live.close()
    store.close()
