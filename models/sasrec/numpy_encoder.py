"""The exported SASRec encoder in numpy: the shopper's sequence state without a TensorFlow call per request.

Serving asks the sequence model for one state per request (the newest position of the encoder over the
shopper's recent items); through the SavedModel signature that is ~1-2 ms of TensorFlow's fixed cost for
a 50 × 64 computation that takes ~0.1 ms in numpy. :func:`numpy_sasrec` reads the weights out of the
loaded artifact, rebuilds ``models.sasrec.model.build_encoder``'s forward pass (item embedding × √dim +
position embedding, masked; per block: layer norm, causal multi-head self-attention as Keras computes
it, residual, layer norm, ReLU feed-forward, residual; final layer norm) and checks it against the
signature on probe sequences before anyone uses it (``models.numpy_copy``); a copy that disagrees is
refused and the signature keeps answering.

The position embedding is not a variable of the saved encoder: Keras evaluated ``positions(range)`` once
when the functional model was built, so the graph captured its value as a constant of shape
(1, max_len, dim); that constant is what is read here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from models.numpy_copy import checked_copy
from models.sasrec.model import OOV_INDEX, PAD_INDEX
from models.tf_weights import graph_constants, variables

_LAYER_NORM_EPSILON = 1e-6
_MASKED = np.float32(-1e9)  # what Keras' Softmax adds to masked attention scores (float32)


def _layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    scale = np.float32(1.0 / x.shape[-1])
    mean = np.add.reduce(x, axis=-1, keepdims=True) * scale
    centred = x - mean
    variance = np.add.reduce(centred * centred, axis=-1, keepdims=True) * scale
    inv = (np.float32(1.0) / np.sqrt(variance + np.float32(_LAYER_NORM_EPSILON))) * gamma
    return x * inv + (beta - mean * inv)


class NumpySASRec:
    """A :class:`~models.sasrec.export.SASRecArtifact` whose ``states`` runs in numpy."""

    def __init__(self, artifact: Any, weights: dict[str, np.ndarray], positions: np.ndarray) -> None:
        self.artifact = artifact
        self.item_ids_ = artifact.item_ids_
        self.popularity_ = artifact.popularity_
        self.config = artifact.config
        self.max_len = int(artifact.config.max_len)
        self._w = weights
        self._positions = positions.reshape(self.max_len, -1).astype(np.float32)
        self._items = weights["item_embedding/embeddings"]
        self._tokens = {str(item): row + 2 for row, item in enumerate(self.item_ids_)}  # 0 pads, 1 unknown
        self._scale = np.float32(self.config.dim**0.5)
        self._heads = int(self.config.heads)
        allowed = np.tril(np.ones((self.max_len, self.max_len), dtype=bool))
        self._causal = np.where(allowed, np.float32(0.0), _MASKED).astype(np.float32)
        self._blocks: dict[int, tuple[np.ndarray, ...]] = {}

    def item_embeddings(self) -> np.ndarray:
        return np.asarray(self.artifact.item_embeddings())

    def states(self, recent: Sequence[Sequence[str]]) -> np.ndarray:
        """float32 (n, dim): the encoder's newest position, as the signature's ``state``."""
        length = self.max_len
        tokens = np.full((len(recent), length), PAD_INDEX, dtype=np.int64)
        for row, items in enumerate(recent):  # models.sasrec.train.tokenize, by a dict (tested equal)
            chosen = [str(i) for i in list(items)[:length]][::-1]
            if chosen:
                tokens[row, length - len(chosen) :] = [self._tokens.get(i, OOV_INDEX) for i in chosen]
        return self.encode(tokens)

    def _block_weights(self, b: int) -> tuple[np.ndarray, ...]:
        """Block ``b``'s attention projections fused into one (dim, 3 · heads · key_dim) kernel, and its
        output projection as a matrix (fewer, larger products: per request the cost is per operation)."""
        cached = self._blocks.get(b)
        if cached is None:
            w, dim = self._w, self._items.shape[1]
            names = ("query", "key", "value")
            kernel = np.concatenate([w[f"att_{b}/{n}/kernel"].reshape(dim, -1) for n in names], axis=1)
            bias = np.concatenate([w[f"att_{b}/{n}/bias"].reshape(-1) for n in names])
            out = w[f"att_{b}/attention_output/kernel"].reshape(-1, dim)
            cached = self._blocks[b] = (kernel, bias, out)
        return cached

    def encode(self, tokens: np.ndarray) -> np.ndarray:
        """States of left-padded token rows, one row at a time (a request has one), each computed over its
        items and a single padding position: every padding position holds the same vector in every block
        (its input is masked to zero, and masked again after each residual), so the P identical keys a
        query sees weigh as one key whose score is raised by log P; a request with 5 recent items of 50
        positions then computes 6 rows, not 50. The probe check at load goes through this path."""
        if not len(tokens):
            return np.zeros((0, self._items.shape[1]), dtype=np.float32)
        return np.concatenate([self._encode_row(row) for row in tokens])

    def _encode_row(self, row: np.ndarray) -> np.ndarray:
        pads = int(np.count_nonzero(row == PAD_INDEX))
        if pads <= 1:
            return self._encode(row[None, :], self._positions, self._causal)
        keep = np.r_[pads - 1, np.arange(pads, len(row))]
        bias = np.zeros(len(keep), dtype=np.float32)
        bias[0] = np.float32(np.log(pads))
        causal = self._causal[np.ix_(keep, keep)] + bias
        return self._encode(row[keep][None, :], self._positions[keep], causal)

    def _encode(self, tokens: np.ndarray, positions: np.ndarray, causal_all: np.ndarray) -> np.ndarray:
        w, heads = self._w, self._heads
        n, length = tokens.shape
        mask = (tokens != PAD_INDEX).astype(np.float32)[:, :, None]
        x = (self._items[tokens] * self._scale + positions[None, :, :]) * mask
        dim = x.shape[-1]
        key_dim = dim // heads
        blocks = int(self.config.blocks)
        for b in range(blocks):
            kernel, bias, out_kernel = self._block_weights(b)
            h = _layer_norm(x, w[f"ln_att_{b}/gamma"], w[f"ln_att_{b}/beta"])
            qkv = (h @ kernel + bias).reshape(n, length, 3, heads, key_dim).transpose(2, 0, 3, 1, 4)
            query, key, value = qkv[0], qkv[1], qkv[2]  # each (n, heads, length, key_dim)
            last = b == blocks - 1  # the state is the newest position: the last block needs only its row
            if last:
                query, x, mask = query[:, :, -1:, :], x[:, -1:, :], mask[:, -1:, :]
            query = query * np.float32(1.0 / np.sqrt(float(key_dim)))
            causal = causal_all[-1:] if last else causal_all
            scores = query @ key.transpose(0, 1, 3, 2) + causal  # (n, heads, t, s)
            scores = scores - scores.max(axis=-1, keepdims=True)
            weights = np.exp(scores)
            weights /= weights.sum(axis=-1, keepdims=True)
            rows = x.shape[1]
            attended = (weights @ value).transpose(0, 2, 1, 3).reshape(n, rows, heads * key_dim)
            x = (x + attended @ out_kernel + w[f"att_{b}/attention_output/bias"]) * mask
            h = _layer_norm(x, w[f"ln_ffn_{b}/gamma"], w[f"ln_ffn_{b}/beta"])
            h = np.maximum(h @ w[f"ffn_in_{b}/kernel"] + w[f"ffn_in_{b}/bias"], np.float32(0.0))
            x = (x + h @ w[f"ffn_out_{b}/kernel"] + w[f"ffn_out_{b}/bias"]) * mask
        state = _layer_norm(x[:, -1, :], w["ln_out/gamma"], w["ln_out/beta"])
        return np.asarray(state, dtype=np.float32)


def extract(artifact: Any) -> NumpySASRec:
    """The numpy copy of a loaded SASRec artifact (unchecked; see :func:`numpy_sasrec`)."""
    signature = artifact._signature
    weights = variables(signature)
    config = artifact.config
    shape = (1, int(config.max_len), int(config.dim))
    found = [v for _, v in graph_constants(signature) if v.shape == shape and v.dtype.kind == "f"]
    distinct = {v.tobytes(): v for v in found}
    if len(distinct) != 1:
        raise ValueError(f"expected one position table of shape {shape} in the graph, found {len(distinct)}")
    return NumpySASRec(artifact, weights, next(iter(distinct.values())))


def probe_sequences(model: NumpySASRec, rows: int = 256, seed: int = 0) -> list[list[str]]:
    """Recent-item lists that reach every case: empty, one item, full and over-long, unknown items."""
    rng = np.random.default_rng(seed)
    ids = [str(i) for i in model.item_ids_] + ["(never seen)"]
    out: list[list[str]] = [[], [ids[0]]]
    for _ in range(rows - 2):
        length = int(rng.integers(1, model.max_len + 6))
        out.append([ids[i] for i in rng.integers(0, len(ids), length)])
    return out


def numpy_sasrec(artifact: Any) -> NumpySASRec | None:
    """The checked numpy copy of ``artifact``, or None (with a warning) when it cannot be made or its
    states differ from the signature's by more than ``models.numpy_copy.TOLERANCE`` on the probes."""

    return checked_copy("SASRec", artifact, extract, probe_sequences, lambda model, seqs: model.states(seqs))
