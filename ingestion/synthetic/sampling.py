"""Vectorised sampling helpers of the synthetic shop: ids, row-wise choices, segment sums, brand names."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingestion.synthetic import catalog_tree as ct


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """Bijective 64-bit mixer: distinct inputs give distinct, random-looking ids."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def hex_ids(n: int, salt: int, prefix: str) -> pa.Array:
    """``n`` unique ids like ``ev-3f9a...`` without a Python loop."""
    raw = _splitmix64(np.arange(n, dtype=np.uint64) ^ np.uint64(_splitmix64(np.array([salt]))[0]))
    text = raw.astype(">u8").tobytes().hex().encode()
    hexes = pa.array(np.frombuffer(text, dtype="S16")).cast(pa.string())
    return pc.binary_join_element_wise(pa.scalar(prefix), hexes, "")


def seq_ids(n: int, prefix: str) -> pa.Array:
    width = max(5, len(str(n)))
    return pa.array([f"{prefix}{i:0{width}d}" for i in range(n)], pa.string())


def rowwise_choice(cum: np.ndarray, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sample one column per requested row from row-wise cumulative weights (normalised to 1)."""
    out = np.empty(len(rows), dtype=np.int64)
    chunk = 200_000
    for lo in range(0, len(rows), chunk):
        r = rng.random(min(chunk, len(rows) - lo))[:, None]
        out[lo : lo + chunk] = (cum[rows[lo : lo + chunk]] < r).sum(axis=1)
    return np.minimum(out, cum.shape[1] - 1)


def segment_cumsum(values: np.ndarray, group_starts: np.ndarray) -> np.ndarray:
    """Cumulative sum that restarts at each group (groups are contiguous)."""
    total = np.cumsum(values)
    offsets = np.repeat(
        total[group_starts] - values[group_starts], np.diff(np.append(group_starts, len(values)))
    )
    return total - offsets


def brand_names(n: int, rng: np.random.Generator) -> list[str]:
    names: set[str] = set()
    syl = ct.SYLLABLES
    while len(names) < n:
        k = int(rng.integers(2, 4))
        names.add("".join(syl[int(i)] for i in rng.integers(0, len(syl), k)).capitalize())
    return sorted(names, key=lambda s: (len(s), s))
