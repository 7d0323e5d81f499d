"""Non-learned baselines every model is compared against (docs/design.md §2): popularity, recent popularity,
trending, bought/viewed-together, item-kNN (plain and time-decayed) and session-kNN, all behind the
``models.evaluation.Recommender`` protocol.
"""

from models.baselines.als import ALSRecommender
from models.baselines.cooccurrence import CooccurrenceRecommender
from models.baselines.item_knn import DecayedItemKNNRecommender, ItemKNNRecommender
from models.baselines.popularity import PopularityRecommender
from models.baselines.recent_popularity import RecentPopularityRecommender
from models.baselines.session_knn import SessionKNNRecommender
from models.baselines.trending import TrendingRecommender

__all__ = [
    "ALSRecommender",
    "CooccurrenceRecommender",
    "DecayedItemKNNRecommender",
    "ItemKNNRecommender",
    "PopularityRecommender",
    "RecentPopularityRecommender",
    "SessionKNNRecommender",
    "TrendingRecommender",
]
