import re
from pathlib import Path

import pytest

from aisle.core.errors import BadInput
from aisle.core.settings import Settings, ensure_home, load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_point_everything_under_home(tmp_path: Path) -> None:
    s = load_settings(home=tmp_path)
    assert s.profile == "embedded"
    assert s.paths.lake == tmp_path.resolve() / "lake"
    assert s.effective_mlflow_uri == f"sqlite:///{tmp_path.resolve() / 'mlflow' / 'mlflow.db'}"


def test_env_prefix_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AISLE_HOME", str(tmp_path))
    monkeypatch.setenv("AISLE_REDIS_URL", "redis://example:6380/1")
    s = load_settings()
    assert s.home == tmp_path
    assert s.redis_url == "redis://example:6380/1"


def test_unknown_aisle_variable_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AISLE_REDIS_ULR", "redis://typo")
    with pytest.raises(BadInput, match="AISLE_REDIS_ULR"):
        load_settings()


def test_unknown_keyword_is_rejected() -> None:
    with pytest.raises(BadInput, match="invalid setting"):
        load_settings(not_a_setting=1)


def test_settings_are_frozen(tmp_path: Path) -> None:
    s = load_settings(home=tmp_path)
    with pytest.raises(Exception, match="frozen"):
        s.home = Path("/elsewhere")  # type: ignore[misc]


def test_stack_profile_requires_urls() -> None:
    with pytest.raises(BadInput, match="AISLE_REDIS_URL"):
        load_settings(profile="stack", kafka_bootstrap="k:9092")
    s = load_settings(profile="stack", kafka_bootstrap="k:9092", redis_url="redis://r:6379/0")
    assert s.profile == "stack"


def test_out_of_range_value_is_a_clear_error() -> None:
    with pytest.raises(BadInput, match="max_failure_rate"):
        load_settings(max_failure_rate=1.5)


def test_unwritable_home_is_bad_input(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(BadInput, match="not writable"):
        ensure_home(load_settings(home=blocker / "home"))


def test_env_example_lists_every_setting_and_nothing_else() -> None:
    text = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s*AISLE_([A-Z_]+)=", text, flags=re.M))
    fields = {name.upper() for name in Settings.model_fields}
    assert listed == fields


def test_no_module_reads_the_environment_outside_settings() -> None:
    offenders = []
    for package in ("aisle", "ingestion", "feature_repo", "models", "serving", "monitoring", "dags"):
        for path in (ROOT / package).rglob("*.py"):
            if path == ROOT / "aisle" / "core" / "settings.py":
                continue
            source = path.read_text()
            if re.search(r"os\.environ|os\.getenv|getenv\(", source):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
