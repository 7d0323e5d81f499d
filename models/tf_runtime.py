"""The one way Aisle imports TensorFlow: Keras 2 (tf-keras) selected first, threads sized to the box.

TensorFlow Recommenders is written against Keras 2; with Keras 3 (TF's default since 2.16) its models
fail in confusing ways. ``TF_USE_LEGACY_KERAS`` is only honoured if it is set before TensorFlow is
first imported, so every model module gets TensorFlow through :func:`tensorflow` instead of importing
it at module level.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from aisle.core import logs
from aisle.core.settings import export_env

log = logging.getLogger(__name__)


@functools.cache
def tensorflow() -> ModuleType:
    """Import TensorFlow with Keras 2 and fail loudly if something imported it with Keras 3 already."""
    export_env({"TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"})
    with native_stderr_muted():
        import tensorflow as tf

    # tf.keras is a lazy alias; with the legacy switch it resolves into the tf_keras package
    keras_home = tf.keras.Model.__module__
    if not keras_home.startswith("tf_keras"):
        raise RuntimeError(
            f"TensorFlow was imported with Keras 3 ({keras_home}) before Aisle could select Keras 2; "
            "call models.tf_runtime.tensorflow() before anything that imports tensorflow"
        )
    tf.get_logger().setLevel(logging.ERROR)
    return tf


@functools.cache
def recommenders() -> ModuleType:
    """TensorFlow Recommenders, imported after :func:`tensorflow` fixed the Keras version."""
    tensorflow()
    import tensorflow_recommenders as tfrs

    return tfrs


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow; op determinism too, so a fixed seed gives the same weights."""
    tf = tensorflow()
    tf.keras.utils.set_random_seed(seed)
    try:
        tf.config.experimental.enable_op_determinism()
    except RuntimeError:  # already initialised in this process; seeds still apply
        log.debug("op determinism could not be enabled after TF initialised")


@contextlib.contextmanager
def native_stderr_muted() -> Iterator[None]:
    """Silence what C++ writes straight to file descriptor 2 (TensorFlow's start-up and graph-loading
    lines, printed before its log level applies), for the duration of the block only.

    Python's own errors are unaffected: they are raised as exceptions and printed after the block.
    Inside an ``aisle`` command's log session fd 2 already goes to the log file (or, with --verbose,
    should stay visible), so nothing is muted there.
    """
    if logs.active() is not None:
        yield
        return
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # a stream without a descriptor: nothing to mute
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), fd)
            yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


def load_saved_model(path: Path) -> Any:
    """``tf.saved_model.load`` without the graph-loading chatter (unknown-attribute notices)."""
    tf = tensorflow()
    with native_stderr_muted():
        return tf.saved_model.load(str(path))
