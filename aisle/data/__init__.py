"""Data sources for Aisle: the synthetic shop and importers of a shop's own history."""
