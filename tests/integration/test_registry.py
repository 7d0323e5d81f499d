"""The MLflow registry side of the gate, against a real MLflow (SQLite backend, local artifacts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aisle.core.errors import BadInput
from aisle.core.settings import Settings
from models import registry


def _policy_dir(tmp_path: Path, tag: str) -> Path:
    out = tmp_path / f"policy-{tag}"
    out.mkdir()
    (out / "policy.json").write_text(json.dumps({"tag": tag}))
    return out


def _new_version(settings: Settings, tmp_path: Path, tag: str) -> str:
    with registry.start_run(settings, f"test-{tag}") as run:
        run_id = run.info.run_id
    return registry.register_policy(settings, run_id, _policy_dir(tmp_path, tag), {"aisle.run_key": tag})


@pytest.mark.integration
def test_register_promote_rollback_and_download(embedded_settings: Settings, tmp_path: Path) -> None:
    settings = embedded_settings
    assert registry.alias_version(settings, registry.CHAMPION) is None
    with pytest.raises(BadInput, match=r"no .* version has the alias"):
        registry.download_policy(settings)

    v1 = _new_version(settings, tmp_path, "one")
    assert registry.alias_version(settings, registry.CHALLENGER) == v1
    assert registry.alias_version(settings, registry.CHAMPION) is None  # registering never promotes
    registry.promote(settings, v1, "first")
    v2 = _new_version(settings, tmp_path, "two")
    registry.promote(settings, v2, "gate passed")
    assert registry.alias_version(settings, registry.CHAMPION) == v2

    listed = registry.list_versions(settings)
    assert [row["version"] for row in listed] == [v2, v1]
    assert "champion" in listed[0]["aliases"] and "challenger" in listed[0]["aliases"]

    path, version = registry.download_policy(settings)
    assert version == v2 and json.loads((path / "policy.json").read_text()) == {"tag": "two"}

    assert registry.rollback(settings) == {"champion": v1, "previous": v2}
    assert registry.alias_version(settings, registry.CHAMPION) == v1
    with pytest.raises(BadInput, match="no earlier champion"):
        registry.rollback(settings)
    with pytest.raises(BadInput, match="no version 99"):
        registry.promote(settings, "99", "typo")
    # artifacts live under the configured home, not the working directory
    assert (settings.paths.mlflow / "artifacts").is_dir()
