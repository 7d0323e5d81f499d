"""Reading a restored SavedModel's parts as numpy: variables by name, lookup tables, graph constants.

Serving scores with numpy copies of the exported models (``models.wide_deep.numpy_scorer``,
``models.two_tower.numpy_tower``): a TensorFlow signature call costs ~1-2.5 ms of fixed overhead per
request for ~150 rows, the same arithmetic in numpy ~0.1 ms. The copies are taken once, at load, from the
very SavedModel the registry holds, so there is no second artifact that could drift from the first; each
copy is then checked against the signature on probe inputs before it is used (see the two modules).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np


def variables(restored: Any) -> dict[str, np.ndarray]:
    """Every variable under ``restored`` by its Keras name without the ``:0`` (``deep_dense_0/kernel``)."""
    out: dict[str, np.ndarray] = {}
    for variable in restored.variables:
        name = variable.name.rsplit(":", 1)[0]
        if name in out:
            raise ValueError(f"two variables are named {name!r}")
        out[name] = variable.numpy()
    return out


def _layer_key(name: str) -> tuple[int, str]:
    tail = name.rsplit("-", 1)[-1]
    return (int(tail), name) if tail.isdigit() else (-1, name)


def _children(obj: Any) -> Iterator[tuple[str, Any]]:
    names = [n for n in dir(obj) if n.startswith("layer") or n in ("network", "user_tower", "lookup_table")]
    for name in sorted(names, key=_layer_key):
        yield name, getattr(obj, name)


def lookup_tables(restored: Any) -> list[tuple[str, dict[str, int]]]:
    """The string → index hash tables under ``restored`` (the Keras ``StringLookup`` layers), as dicts,
    each with its path of tracked children (``network/layer-42/lookup_table``), in layer order."""
    from models.tf_runtime import tensorflow

    tf = tensorflow()
    found: list[tuple[str, dict[str, int]]] = []
    seen: set[int] = set()

    def walk(obj: Any, path: str) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        for name, child in _children(obj):
            if hasattr(child, "resource_handle") and "HashTable" in type(child).__name__:
                keys, values = tf.raw_ops.LookupTableExportV2(
                    table_handle=child.resource_handle, Tkeys=tf.string, Tvalues=tf.int64
                )
                pairs = zip(keys.numpy().tolist(), values.numpy().tolist(), strict=True)
                table = {k.decode(): int(v) for k, v in pairs}
                found.append((f"{path}/{name}".strip("/"), table))
            else:
                walk(child, f"{path}/{name}")

    walk(restored, "")
    return found


def graph_constants(function: Any) -> list[tuple[str, np.ndarray]]:
    """(node name, value) of every constant a restored concrete function computes with: the ``Const``
    nodes of its graph and of the functions it calls, and the tensors it captured (``captured:N``).

    Constants that Keras folded into the traced graph (normalisation statistics written as Python lists,
    tensors captured by a layer) are not variables: this is the only place they can be read back from.
    """
    from tensorflow.python.framework import tensor_util

    graph = function.graph.as_graph_def()
    nodes = [*graph.node, *(node for f in graph.library.function for node in f.node_def)]
    out = [(n.name, tensor_util.MakeNdarray(n.attr["value"].tensor)) for n in nodes if n.op == "Const"]
    for i, tensor in enumerate(function.captured_inputs):
        if tensor.dtype.name not in ("resource", "variant"):
            out.append((f"captured:{i}", np.asarray(tensor.numpy())))
    return out


def dense(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, relu: bool) -> np.ndarray:
    """A Keras ``Dense`` layer in float32."""
    out = x @ kernel
    out += bias
    return np.maximum(out, 0.0, out=out) if relu else out
