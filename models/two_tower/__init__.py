"""Two-tower retrieval (TensorFlow Recommenders): candidate generation over the whole catalog.

Importing this package is cheap: TensorFlow is only imported (through ``models.tf_runtime``) when a
model is fitted, exported or loaded.
"""

from models.two_tower.data import user_queries
from models.two_tower.export import TwoTowerArtifact, export
from models.two_tower.model import USER_NUMERIC, TwoTowerConfig
from models.two_tower.train import TwoTowerRecommender

__all__ = [
    "USER_NUMERIC",
    "TwoTowerArtifact",
    "TwoTowerConfig",
    "TwoTowerRecommender",
    "export",
    "user_queries",
]
