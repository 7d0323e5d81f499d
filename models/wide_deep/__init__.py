"""Wide & Deep ranker: a linear part over one-hot categories and hashed crosses (memorisation) plus
an MLP over embeddings and numerics (generalisation), trained on graded labels.

Importing this package does not import TensorFlow; fitting, scoring and loading do.
"""

from models.wide_deep.export import WideDeepArtifact, export
from models.wide_deep.model import RankerSpec, WideDeepConfig
from models.wide_deep.train import WideDeepRanker

__all__ = ["RankerSpec", "WideDeepArtifact", "WideDeepConfig", "WideDeepRanker", "export"]
