"""Aisle: real-time personalized product recommendations as an orchestrated MLOps pipeline."""

__version__ = "0.1.0"
