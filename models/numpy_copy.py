"""Serving TensorFlow models through numpy copies, only when the copy provably agrees.

The user tower and the Wide & Deep ranker are read out of their SavedModels into numpy at load time
(a signature call costs ~1-3 ms of TensorFlow overhead per request for ~150 rows). A copy is used only
when it reproduces the signature on probe inputs within ``TOLERANCE``; otherwise the model keeps
running through TensorFlow and a warning says why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final, TypeVar

import numpy as np

log = logging.getLogger(__name__)

#: Largest absolute difference from the signature's outputs a numpy copy may show on the probes.
TOLERANCE: Final = 1e-5

T = TypeVar("T")
P = TypeVar("P")


def checked_copy(
    what: str,
    artifact: Any,
    extract: Callable[[Any], T],
    probes: Callable[[T], P],
    answer: Callable[[Any, P], np.ndarray],
) -> T | None:
    """The copy ``extract(artifact)`` when ``answer(copy, inputs)`` reproduces ``answer(artifact, inputs)``
    within ``TOLERANCE`` on ``inputs = probes(copy)``; None, with a warning naming ``what``, when the copy
    cannot be made or differs by more."""
    try:
        copy = extract(artifact)
        inputs = probes(copy)
        gap = float(np.max(np.abs(np.asarray(answer(copy, inputs)) - np.asarray(answer(artifact, inputs)))))
    except Exception as exc:  # an artifact laid out otherwise: keep it on the signature
        log.warning("%s kept on TensorFlow: no numpy copy (%s: %s)", what, type(exc).__name__, exc)
        return None
    if not gap <= TOLERANCE:
        log.warning("%s kept on TensorFlow: the numpy copy differs by %.2g", what, gap)
        return None
    return copy
