"""One definition of a clean recommendation list, shared by the baseline tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def assert_clean_lists(
    recs: Mapping[str, list[str]], users: Sequence[str], seen: Mapping[str, set[str]], n_items: int
) -> None:
    """No duplicates, no seen item, and the rest of the catalog (no more) when k exceeds it."""
    for user in users:
        items = recs[user]
        assert len(items) == len(set(items)), user
        assert not set(items) & seen.get(user, set()), user
        assert len(items) == n_items - len(seen.get(user, set())), user
