"""The self-attentive sequence encoder (Kang & McAuley's SASRec, 2018), in Keras 2.

Items are embedded (index 0 = padding, 1 = an item the model does not know), a learned position
embedding is added, and causal self-attention blocks (layer norm → multi-head attention → residual,
layer norm → two-layer feed-forward → residual) turn the sequence into one vector per position; the
vector at the last position is the shopper's state, scored against the same item embeddings (shared
input/output table, as in the paper). Sequences are left-padded, oldest first, newest last.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

PAD_INDEX: Final = 0
OOV_INDEX: Final = 1


@dataclass(frozen=True)
class SASRecConfig:
    max_len: int = 50
    dim: int = 64
    blocks: int = 2
    heads: int = 2
    dropout: float = 0.2
    epochs: int = 8
    batch_size: int = 128
    learning_rate: float = 1e-3
    negatives: int = 16  # uniform negatives per position (binary cross-entropy, as in the paper)
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("max_len", "dim", "blocks", "heads", "epochs", "batch_size", "negatives"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1 (got {getattr(self, name)})")
        if self.dim % self.heads:
            raise ValueError(f"dim ({self.dim}) must be a multiple of heads ({self.heads})")


def build_encoder(n_tokens: int, config: SASRecConfig) -> Any:
    """Keras model: int64 [B, max_len] token ids → float32 [B, max_len, dim]; and the item table."""
    from models.tf_runtime import tensorflow

    tf = tensorflow()
    layers = tf.keras.layers
    tokens = layers.Input(shape=(config.max_len,), dtype=tf.int64, name="tokens")
    items = layers.Embedding(n_tokens, config.dim, name="item_embedding")
    positions = layers.Embedding(config.max_len, config.dim, name="position_embedding")
    mask = tf.cast(tf.not_equal(tokens, PAD_INDEX), tf.float32)[:, :, None]
    x = items(tokens) * (config.dim**0.5) + positions(tf.range(config.max_len))[None, :, :]
    x = layers.Dropout(config.dropout)(x) * mask
    causal = tf.linalg.band_part(tf.ones((config.max_len, config.max_len), dtype=tf.bool), -1, 0)
    for b in range(config.blocks):
        h = layers.LayerNormalization(epsilon=1e-6, name=f"ln_att_{b}")(x)
        att = layers.MultiHeadAttention(
            num_heads=config.heads,
            key_dim=config.dim // config.heads,
            dropout=config.dropout,
            name=f"att_{b}",
        )(h, h, attention_mask=causal[None, :, :])
        x = (x + att) * mask
        h = layers.LayerNormalization(epsilon=1e-6, name=f"ln_ffn_{b}")(x)
        h = layers.Dense(config.dim, activation="relu", name=f"ffn_in_{b}")(h)
        h = layers.Dropout(config.dropout)(layers.Dense(config.dim, name=f"ffn_out_{b}")(h))
        x = (x + h) * mask
    out = layers.LayerNormalization(epsilon=1e-6, name="ln_out")(x)
    return tf.keras.Model(tokens, out, name="sasrec_encoder"), items


def state_function(encoder: Any, max_len: int) -> Any:
    """The encoder's last-position vector as a ``tf.function`` (what the SavedModel serves)."""
    from models.tf_runtime import tensorflow

    tf = tensorflow()

    @tf.function(input_signature=[tf.TensorSpec([None, max_len], tf.int64, name="tokens")])
    def serve(tokens: Any) -> dict[str, Any]:
        return {"state": encoder(tokens, training=False)[:, -1, :]}

    return serve
