"""Experiment definitions: what cannot work is refused before it is stored, with the field named."""

from __future__ import annotations

from pathlib import Path

import pytest

from aisle.core.errors import BadInput
from serving.experiments.spec import duration_seconds, load_spec, parse_spec

TWO = [
    {"name": "control", "weight": 0.5, "strategy": "popularity"},
    {"name": "hybrid", "weight": 0.5, "alias": "champion"},
]


def test_a_good_definition_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "e.yaml"
    path.write_text(
        "key: hybrid-vs-pop\nduration: 3d\nlayer: home\ncoverage: 0.5\n"
        "variants:\n  - {name: control, weight: 0.5, strategy: popularity}\n"
        "  - {name: hybrid, weight: 0.5, alias: champion}\n"
        "targeting: {devices: [Mobile], shoppers: returning}\noverrides: {qa-1: hybrid}\n"
    )
    spec = load_spec(path)
    assert spec.control.name == "control"
    assert spec.duration_seconds == 3 * 86_400
    assert spec.targeting.devices == ["mobile"]
    assert spec.aliases() == {"champion"}
    assert spec.targeting.admits("MOBILE", "DE", True) and not spec.targeting.admits("mobile", "DE", False)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"variants": [{**TWO[0], "weight": 0.6}, TWO[1]]}, "weights must sum to 1"),
        ({"variants": [TWO[0]]}, "variants"),
        ({"variants": [TWO[0], {**TWO[1], "name": "control"}]}, "unique"),
        ({"variants": [TWO[0], {"name": "x", "weight": 0.5}]}, "exactly one of `alias` or `strategy`"),
        (
            {"variants": [TWO[0], {"name": "x", "weight": 0.5, "alias": "champion", "strategy": "trending"}]},
            "exactly one",
        ),
        ({"variants": [TWO[0], {"name": "x", "weight": 0.5, "strategy": "random"}]}, "variants.1.strategy"),
        ({"coverage": 0}, "coverage"),
        ({"coverage": 1.5}, "coverage"),
        ({"duration": "two weeks"}, "duration"),
        ({"key": "Has Spaces"}, "key"),
        ({"overrides": {"qa": "nope"}}, "unknown variant"),
        ({"colour": "red"}, "colour"),
        ({"targeting": {"shoppers": "vip"}}, "targeting.shoppers"),
    ],
)
def test_bad_definitions_name_what_is_wrong(change: dict[str, object], message: str) -> None:
    data: dict[str, object] = {"key": "k", "variants": TWO, **change}
    with pytest.raises(BadInput, match=message):
        parse_spec(data)


def test_unreadable_files_are_clear(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no such experiment file"):
        load_spec(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("key: [unclosed\n")
    with pytest.raises(BadInput, match="not valid YAML at line"):
        load_spec(bad)
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    with pytest.raises(BadInput, match="must be a mapping"):
        load_spec(listed)


def test_durations() -> None:
    assert (
        duration_seconds("90s") == 90
        and duration_seconds("10m") == 600
        and duration_seconds("2w") == 1_209_600
    )
    with pytest.raises(ValueError):
        duration_seconds("0d")


def test_targeting_overlap() -> None:
    a = parse_spec({"key": "a", "variants": TWO, "targeting": {"devices": ["desktop"]}}).targeting
    b = parse_spec({"key": "b", "variants": TWO, "targeting": {"devices": ["mobile"]}}).targeting
    c = parse_spec({"key": "c", "variants": TWO}).targeting
    new = parse_spec({"key": "d", "variants": TWO, "targeting": {"shoppers": "new"}}).targeting
    returning = parse_spec({"key": "e", "variants": TWO, "targeting": {"shoppers": "returning"}}).targeting
    assert not a.overlaps(b) and a.overlaps(c) and c.overlaps(b)
    assert not new.overlaps(returning) and new.overlaps(c)
