"""Import Evidently the one safe way: with telemetry off, and only when a report is actually built.

``import evidently`` takes seconds (it loads its UI server and nltk) and its UI sends usage events
unless ``DO_NOT_TRACK`` is set before the import, so no module imports it at the top; they call
:func:`evidently` instead.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aisle.core.settings import export_env


@cache
def evidently() -> Any:
    """The ``evidently`` package, imported once with ``DO_NOT_TRACK=1`` exported first."""
    export_env({"DO_NOT_TRACK": "1"})
    import evidently as ev

    return ev
