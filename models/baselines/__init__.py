"""Non-learned baselines every model is compared against (docs/design.md §2): popularity, trending,
bought/viewed-together and item-kNN, all behind the ``models.evaluation.Recommender`` protocol.
"""

from models.baselines.als import ALSRecommender
from models.baselines.cooccurrence import CooccurrenceRecommender
from models.baselines.item_knn import ItemKNNRecommender
from models.baselines.popularity import PopularityRecommender
from models.baselines.trending import TrendingRecommender

__all__ = [
    "ALSRecommender",
    "CooccurrenceRecommender",
    "ItemKNNRecommender",
    "PopularityRecommender",
    "TrendingRecommender",
]
