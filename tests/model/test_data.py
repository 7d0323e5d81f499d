"""Reading the user list for recommend-batch: the two accepted shapes and clear errors otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from aisle.core.errors import BadInput
from models.data import read_user_file


def test_one_id_per_line_blank_lines_and_repeats(tmp_path: Path) -> None:
    path = tmp_path / "users.txt"
    path.write_text("u1\n\n u2 \nu1\n")
    assert read_user_file(str(path)) == ["u1", "u2"]


def test_csv_with_a_user_id_column(tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    path.write_text("segment,user_id\nvip,u9\nnew,007\n")
    assert read_user_file(str(path)) == ["u9", "007"]  # ids stay strings: no 7 for 007


@pytest.mark.parametrize(
    ("text", "message"),
    [("name,segment\nu1,vip\n", "needs a user_id column"), ("\n\n", "no user ids")],
)
def test_unusable_files_are_refused_clearly(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "users.csv"
    path.write_text(text)
    with pytest.raises(BadInput, match=message):
        read_user_file(str(path))
