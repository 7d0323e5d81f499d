"""What an experiment is: the YAML an experimenter writes, checked before anything is stored.

A definition names its variants and what each serves: a registered model alias (``champion``,
``challenger`` or any other alias) or a strategy computed by the champion policy (``trending``,
``popularity``). The first variant is the control every other variant is compared with. Coverage and
targeting decide who enters; the layer decides which experiments may never share a shopper; overrides
force QA shoppers into a variant; ``duration`` is the planned length the sequential interval spends its
error budget over.

Everything a definition could get wrong is caught here, with the field named, so a bad file never
reaches the store. Checks that need the world (which aliases exist, what else is running) are the
store's and the caller's.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aisle.core.errors import BadInput

#: What a strategy variant may serve (score vectors every registered policy carries).
STRATEGIES: Final = ("trending", "popularity")
SHOPPERS: Final = ("all", "new", "returning")
DEFAULT_LAYER: Final = "default"
DEFAULT_DURATION: Final = "14d"
WEIGHT_TOLERANCE: Final = 1e-6
_KEY: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_DURATION: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def duration_seconds(text: str) -> float:
    """``"14d"``, ``"36h"``, ``"10m"`` → seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"duration {text!r} is not like 14d, 36h, 10m or 90s")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError("duration must be positive")
    return seconds


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Variant(_Strict):
    name: str = Field(min_length=1, max_length=64)
    weight: float = Field(gt=0.0, le=1.0)
    alias: str | None = Field(None, min_length=1, max_length=64)
    strategy: Literal["trending", "popularity"] | None = None

    @model_validator(mode="after")
    def _serves_one_thing(self) -> Variant:
        if (self.alias is None) == (self.strategy is None):
            raise ValueError(f"variant {self.name!r} must serve exactly one of `alias` or `strategy`")
        return self

    @property
    def serves(self) -> str:
        """``alias:champion`` or ``strategy:popularity``: what the service must hold for this variant."""
        return f"alias:{self.alias}" if self.alias else f"strategy:{self.strategy}"


class Targeting(_Strict):
    """Who may enter. Empty lists mean everyone; ``shoppers`` splits by whether the shop knows them."""

    devices: list[str] = Field(default_factory=list, max_length=20)
    countries: list[str] = Field(default_factory=list, max_length=300)
    shoppers: Literal["all", "new", "returning"] = "all"

    @field_validator("devices", "countries")
    @classmethod
    def _unique_lower(cls, values: list[str]) -> list[str]:
        return sorted({v.strip().lower() for v in values if v.strip()})

    def admits(self, device: str | None, country: str | None, returning: bool | None) -> bool:
        if self.devices and (device or "").lower() not in self.devices:
            return False
        if self.countries and (country or "").lower() not in self.countries:
            return False
        if self.shoppers == "all":
            return True
        return returning is not None and returning == (self.shoppers == "returning")

    def overlaps(self, other: Targeting) -> bool:
        """Whether some shopper could be admitted by both (used to keep layers apart)."""
        if self.devices and other.devices and not set(self.devices) & set(other.devices):
            return False
        if self.countries and other.countries and not set(self.countries) & set(other.countries):
            return False
        return "all" in (self.shoppers, other.shoppers) or self.shoppers == other.shoppers


class Guardrails(_Strict):
    """Limits no variant may cross, whatever it earns: the service must stay fast and whole."""

    p99_latency_ms: float = Field(default=250.0, gt=0.0)
    error_rate: float = Field(default=0.01, ge=0.0, le=1.0)
    degraded_share: float = Field(default=0.05, ge=0.0, le=1.0)


class ExperimentSpec(_Strict):
    key: str
    description: str = Field("", max_length=2000)
    salt: str | None = Field(None, min_length=1, max_length=64)
    layer: str = Field(DEFAULT_LAYER, min_length=1, max_length=64)
    coverage: float = Field(1.0, gt=0.0, le=1.0)
    duration: str = DEFAULT_DURATION
    primary_metric: Literal["conversion", "ctr", "add_to_cart_rate", "revenue_per_user"] = "conversion"
    variants: list[Variant] = Field(min_length=2, max_length=20)
    targeting: Targeting = Field(default_factory=Targeting)
    guardrails: Guardrails = Field(default_factory=Guardrails)
    overrides: dict[str, str] = Field(default_factory=dict, max_length=1000)

    @field_validator("key")
    @classmethod
    def _key_shape(cls, key: str) -> str:
        if not _KEY.match(key):
            raise ValueError("key must be 1-64 lowercase letters, digits, '-' or '_', starting alphanumeric")
        return key

    @field_validator("duration")
    @classmethod
    def _duration_shape(cls, text: str) -> str:
        duration_seconds(text)
        return text

    @model_validator(mode="after")
    def _variants_make_sense(self) -> ExperimentSpec:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must be unique (got {names})")
        total = math.fsum(v.weight for v in self.variants)
        if abs(total - 1.0) > WEIGHT_TOLERANCE:
            raise ValueError(f"variant weights must sum to 1 (they sum to {total:g})")
        unknown = sorted({v for v in self.overrides.values() if v not in names})
        if unknown:
            raise ValueError(f"overrides name unknown variant(s) {unknown}; variants are {names}")
        return self

    @property
    def control(self) -> Variant:
        return self.variants[0]

    @property
    def duration_seconds(self) -> float:
        return duration_seconds(self.duration)

    def aliases(self) -> set[str]:
        return {v.alias for v in self.variants if v.alias}

    def sticky_part(self) -> dict[str, Any]:
        """What may not change while the experiment runs: who gets which variant and what it serves."""
        return {
            "variants": [v.model_dump() for v in self.variants],
            "layer": self.layer,
            "coverage": self.coverage,
            "targeting": self.targeting.model_dump(),
        }


def _where(error: Any) -> str:
    loc = ".".join(str(p) for p in error.get("loc", ()))
    return loc or "definition"


def parse_spec(data: Any, source: str = "definition") -> ExperimentSpec:
    """A mapping (from YAML or JSON) as a checked spec; every problem is one BadInput naming the field."""
    if not isinstance(data, dict):
        raise BadInput(f"{source}: an experiment definition must be a mapping (key: ..., variants: ...)")
    try:
        return ExperimentSpec(**data)
    except ValidationError as exc:
        first = exc.errors()[0]
        message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        more = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
        where = _where(first)
        prefix = f"{source}: {where}: " if where != "definition" else f"{source}: "
        raise BadInput(f"{prefix}{message}{more}") from None


def load_spec(path: Path) -> ExperimentSpec:
    """Read a YAML definition file."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"no such experiment file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read {path}: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise BadInput(f"{path} is not valid YAML{where}") from None
    return parse_spec(data, source=str(path))
