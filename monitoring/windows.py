"""The two time windows every comparison uses: a reference window followed by the current window.

Windows are on the data's clock, not the wall clock: the default end ("as of") is the end of the last
day that holds events, so a replayed or generated shop is monitored exactly like a live one, and the
same lake always gives the same windows. ``current = [as_of - window, as_of)`` and
``reference = [as_of - window - reference, as_of - window)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aisle.core.errors import BadInput

_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([hdw])\s*$")


def parse_span(text: str, what: str) -> timedelta:
    """``"1d"``, ``"12h"``, ``"2w"`` → timedelta; anything else is bad input naming the option."""
    match = _SPAN.match(str(text).lower())
    if not match:
        raise BadInput(f"--{what} must look like 12h, 1d or 2w (got {text!r})")
    span = float(match.group(1)) * _UNITS[match.group(2)]
    if span <= timedelta(0):
        raise BadInput(f"--{what} must be longer than zero (got {text!r})")
    return span


def parse_time(text: str, what: str = "at") -> datetime:
    """An ISO date or time (UTC unless it says otherwise)."""
    try:
        parsed = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(f"--{what} must be an ISO date or time like 2026-02-20 (got {text!r})") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def day_end(ts: datetime) -> datetime:
    """The midnight after ``ts`` (a time already at midnight stays)."""
    midnight = ts.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight if midnight == ts else midnight + timedelta(days=1)


@dataclass(frozen=True)
class Windows:
    as_of: datetime
    window: timedelta
    reference: timedelta

    @property
    def current_start(self) -> datetime:
        return self.as_of - self.window

    @property
    def reference_start(self) -> datetime:
        return self.current_start - self.reference

    def as_dict(self) -> dict[str, str]:
        return {
            "as_of": self.as_of.isoformat(),
            "current": f"{self.current_start.isoformat()} .. {self.as_of.isoformat()}",
            "reference": f"{self.reference_start.isoformat()} .. {self.current_start.isoformat()}",
        }


def make_windows(as_of: datetime, window: str | timedelta, reference: str | timedelta) -> Windows:
    w = window if isinstance(window, timedelta) else parse_span(window, "window")
    r = reference if isinstance(reference, timedelta) else parse_span(reference, "reference")
    return Windows(as_of=as_of.astimezone(UTC), window=w, reference=r)
