"""The experiment store: definitions, versions and lifecycle in a real database (SQLAlchemy).

Embedded SQLite under ``$AISLE_HOME/experiments`` by default, PostgreSQL (or any SQLAlchemy URL) when
``AISLE_EXPERIMENTS_DB_URL`` is set. Why a database and not files: starting an experiment must check
everything else that runs and claim its traffic in one step, and two people starting experiments at the
same moment must not both win. Every change is one transaction that first bumps a single counter row,
which serialises writers on SQLite and PostgreSQL alike; all checks run inside it, so a refused change
writes nothing.

Lifecycle: draft → running → stopped. A draft may be redefined freely; a running experiment may not
change at all (its salt, weights and variants decide who sees what, and a restart must give everyone
the same variant again); a stopped one is final, and defining the key again makes version N+1.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from aisle.core.errors import BadInput, ServiceUnavailable
from serving.experiments.spec import ExperimentSpec, parse_spec

DRAFT: Final = "draft"
RUNNING: Final = "running"
STOPPED: Final = "stopped"
#: Each layer's traffic is cut into this many buckets; coverage is claimed in whole buckets.
BUCKETS: Final = 10_000


class UnknownExperiment(BadInput):
    """No experiment (or version) of that key: the API answers 404."""


class Conflict(BadInput):
    """The change collides with the experiment's state or with what else runs: the API answers 409."""


metadata = sa.MetaData()
experiments_table = sa.Table(
    "aisle_experiments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("salt", sa.String(64), nullable=False),
    sa.Column("layer", sa.String(64), nullable=False),
    sa.Column("bucket_lo", sa.Integer),
    sa.Column("bucket_hi", sa.Integer),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("stopped_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("key", "version", name="uq_aisle_experiments_key_version"),
)
looks_table = sa.Table(
    "aisle_experiment_looks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("experiment_id", sa.Integer, sa.ForeignKey("aisle_experiments.id"), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("fraction", sa.Float, nullable=False),
    sa.Column("users", sa.Integer, nullable=False),
)
writes_table = sa.Table(
    "aisle_experiment_writes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
)


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything here is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Experiment:
    """One stored version of an experiment."""

    id: int
    key: str
    version: int
    status: str
    spec: ExperimentSpec
    salt: str
    layer: str
    bucket_lo: int | None
    bucket_hi: int | None
    created_at: datetime
    started_at: datetime | None
    stopped_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "version": self.version,
            "status": self.status,
            "salt": self.salt,
            "layer": self.layer,
            "buckets": [self.bucket_lo, self.bucket_hi] if self.bucket_lo is not None else None,
            "created_at": self.created_at.isoformat(),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "stopped_at": self.stopped_at.isoformat() if self.stopped_at else None,
            "definition": self.spec.model_dump(),
        }


@dataclass(frozen=True)
class Look:
    at: datetime
    fraction: float
    users: int


def _row(row: Any) -> Experiment:
    return Experiment(
        id=row.id,
        key=row.key,
        version=row.version,
        status=row.status,
        spec=parse_spec(row.spec, source=f"stored experiment {row.key} v{row.version}"),
        salt=row.salt,
        layer=row.layer,
        bucket_lo=row.bucket_lo,
        bucket_hi=row.bucket_hi,
        created_at=_utc(row.created_at) or now(),
        started_at=_utc(row.started_at),
        stopped_at=_utc(row.stopped_at),
    )


def normalise_url(url: str) -> str:
    """``postgres://`` (Heroku style) is ``postgresql://`` to SQLAlchemy."""
    return "postgresql://" + url.removeprefix("postgres://") if url.startswith("postgres://") else url


def _free_range(taken: list[tuple[int, int]], size: int) -> tuple[int, int] | None:
    """The first gap of ``size`` buckets among the claimed ranges of a layer."""
    start = 0
    for lo, hi in sorted(taken):
        if lo - start >= size:
            return start, start + size
        start = max(start, hi)
    return (start, start + size) if BUCKETS - start >= size else None


class ExperimentStore:
    """Create, start, stop, list and show experiments; every mutation is one checked transaction."""

    def __init__(self, url: str, *, create_dirs: Any = None) -> None:
        self.url = normalise_url(url)
        if create_dirs is not None:
            create_dirs()
        try:
            self.engine: Engine = sa.create_engine(self.url, future=True, pool_pre_ping=True)
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
            raise BadInput(f"AISLE_EXPERIMENTS_DB_URL is not a usable database URL ({exc})") from None
        self._ready = False

    def _where(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def _connect(self, write: bool) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                if not self._ready:
                    metadata.create_all(conn)
                    self._ready = True
                if write:  # take the write lock first, so checks and writes see one state
                    bumped = conn.execute(
                        sa.update(writes_table)
                        .where(writes_table.c.id == 1)
                        .values(count=writes_table.c.count + 1)
                    )
                    if bumped.rowcount == 0:
                        conn.execute(sa.insert(writes_table).values(id=1, count=1))
                yield conn
        except sa.exc.OperationalError as exc:
            raise ServiceUnavailable(
                f"the experiment store at {self._where()} does not answer ({exc.orig or exc})".strip()
            ) from None

    def close(self) -> None:
        self.engine.dispose()

    # ----------------------------------------------------------------- reads

    def _versions(self, conn: Connection, key: str) -> list[Experiment]:
        rows = conn.execute(
            sa.select(experiments_table)
            .where(experiments_table.c.key == key)
            .order_by(experiments_table.c.version)
        )
        return [_row(r) for r in rows]

    def versions(self, key: str) -> list[Experiment]:
        with self._connect(write=False) as conn:
            return self._versions(conn, key)

    def get(self, key: str, version: int | None = None) -> Experiment:
        """The given version, or the latest one; an unknown key is a BadInput naming it."""
        found = self.versions(key)
        if not found:
            raise UnknownExperiment(f"no experiment {key!r}; `aisle experiment list` shows the known ones")
        if version is None:
            return found[-1]
        for exp in found:
            if exp.version == version:
                return exp
        raise UnknownExperiment(
            f"experiment {key!r} has no version {version} (versions: {[e.version for e in found]})"
        )

    def list_latest(self) -> list[Experiment]:
        """The latest version of every experiment."""
        with self._connect(write=False) as conn:
            rows = conn.execute(
                sa.select(experiments_table).order_by(experiments_table.c.key, experiments_table.c.version)
            )
            latest: dict[str, Experiment] = {}
            for r in rows:
                latest[r.key] = _row(r)
        return list(latest.values())

    def running(self) -> list[Experiment]:
        with self._connect(write=False) as conn:
            return self._running(conn)

    def _running(self, conn: Connection) -> list[Experiment]:
        rows = conn.execute(
            sa.select(experiments_table)
            .where(experiments_table.c.status == RUNNING)
            .order_by(experiments_table.c.started_at, experiments_table.c.id)
        )
        return [_row(r) for r in rows]

    def looks(self, experiment: Experiment) -> list[Look]:
        with self._connect(write=False) as conn:
            rows = conn.execute(
                sa.select(looks_table)
                .where(looks_table.c.experiment_id == experiment.id)
                .order_by(looks_table.c.at, looks_table.c.id)
            )
            return [Look(at=_utc(r.at) or now(), fraction=r.fraction, users=r.users) for r in rows]

    # ----------------------------------------------------------------- writes

    def create(self, spec: ExperimentSpec, known_aliases: set[str] | None = None) -> Experiment:
        """Store a definition as a draft: new key → v1, draft → redefined, stopped → next version.

        ``known_aliases``: the registered model aliases; a variant naming another one is refused.
        """
        if known_aliases is not None:
            unknown = sorted(spec.aliases() - known_aliases)
            if unknown:
                have = ", ".join(sorted(known_aliases)) or "none"
                raise BadInput(
                    f"experiment {spec.key!r}: unknown model alias(es) {', '.join(unknown)} "
                    f"(registered aliases: {have})"
                )
        with self._connect(write=True) as conn:
            versions = self._versions(conn, spec.key)
            latest = versions[-1] if versions else None
            if latest is not None and latest.status == RUNNING:
                raise Conflict(
                    f"experiment {spec.key!r} is running (version {latest.version}): its salt, weights and "
                    f"variants cannot change; stop it first, and the new definition becomes version "
                    f"{latest.version + 1}"
                )
            salt = spec.salt or secrets.token_hex(8)
            values = {
                "spec": spec.model_copy(update={"salt": salt}).model_dump(mode="json"),
                "salt": salt,
                "layer": spec.layer,
                "status": DRAFT,
            }
            if latest is not None and latest.status == DRAFT:
                conn.execute(
                    sa.update(experiments_table).where(experiments_table.c.id == latest.id).values(**values)
                )
                version = latest.version
            else:
                version = latest.version + 1 if latest else 1
                conn.execute(
                    sa.insert(experiments_table).values(
                        key=spec.key, version=version, created_at=now(), **values
                    )
                )
            return _row(
                conn.execute(
                    sa.select(experiments_table).where(
                        experiments_table.c.key == spec.key, experiments_table.c.version == version
                    )
                ).one()
            )

    def start(self, key: str) -> Experiment:
        """draft → running: check what else runs, claim the layer's traffic, all in one transaction."""
        with self._connect(write=True) as conn:
            exp = self._latest(conn, key)
            if exp.status != DRAFT:
                hint = "it already runs" if exp.status == RUNNING else "create it again for a new version"
                raise Conflict(f"experiment {key!r} version {exp.version} is {exp.status}; {hint}")
            running = self._running(conn)
            self._check_layers(exp, running)
            self._check_overrides(exp, running)
            size = max(1, round(exp.spec.coverage * BUCKETS))
            taken = [
                (r.bucket_lo, r.bucket_hi)
                for r in running
                if r.layer == exp.layer and r.bucket_lo is not None and r.bucket_hi is not None
            ]
            claimed = _free_range(taken, size)
            if claimed is None:
                free = BUCKETS - sum(hi - lo for lo, hi in taken)
                others = ", ".join(r.key for r in running if r.layer == exp.layer)
                raise Conflict(
                    f"experiment {key!r} claims {exp.spec.coverage:.0%} of layer {exp.layer!r}, but running "
                    f"experiment(s) {others} already claim the same traffic (at most {free / BUCKETS:.0%} "
                    "is free in one range); lower its coverage, stop one, or use another layer"
                )
            return self._set(
                conn, exp, status=RUNNING, started_at=now(), bucket_lo=claimed[0], bucket_hi=claimed[1]
            )

    def _latest(self, conn: Connection, key: str) -> Experiment:
        versions = self._versions(conn, key)
        if not versions:
            raise UnknownExperiment(
                f"no experiment {key!r}; create it first (`aisle experiment create FILE`)"
            )
        return versions[-1]

    @staticmethod
    def _set(conn: Connection, exp: Experiment, **values: Any) -> Experiment:
        conn.execute(sa.update(experiments_table).where(experiments_table.c.id == exp.id).values(**values))
        return _row(conn.execute(sa.select(experiments_table).where(experiments_table.c.id == exp.id)).one())

    @staticmethod
    def _check_layers(exp: Experiment, running: list[Experiment]) -> None:
        """Each experiment decides the whole policy, so two layers must never meet in one shopper."""
        for other in running:
            if other.layer != exp.layer and other.spec.targeting.overlaps(exp.spec.targeting):
                raise Conflict(
                    f"experiment {exp.key!r} (layer {exp.layer!r}) overlaps running experiment {other.key!r} "
                    f"(layer {other.layer!r}): layers are hashed independently, so a shopper could be in "
                    "both and be served two policies; use one layer, or make their targeting disjoint"
                )

    @staticmethod
    def _check_overrides(exp: Experiment, running: list[Experiment]) -> None:
        for other in running:
            both = sorted(set(exp.spec.overrides) & set(other.spec.overrides))
            if both:
                raise Conflict(
                    f"experiment {exp.key!r} forces user(s) {', '.join(both[:5])} that running experiment "
                    f"{other.key!r} forces too; a shopper can be forced into one experiment only"
                )

    def stop(self, key: str) -> Experiment:
        with self._connect(write=True) as conn:
            exp = self._latest(conn, key)
            if exp.status != RUNNING:
                raise Conflict(f"experiment {key!r} version {exp.version} is {exp.status}, not running")
            return self._set(conn, exp, status=STOPPED, stopped_at=now())

    def record_look(self, experiment: Experiment, fraction: float, users: int) -> None:
        """An analysis was read: the sequential interval spends error budget per look, so looks count."""
        with self._connect(write=True) as conn:
            conn.execute(
                sa.insert(looks_table).values(
                    experiment_id=experiment.id, at=now(), fraction=float(fraction), users=int(users)
                )
            )
