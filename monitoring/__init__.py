"""Monitoring: Evidently drift and recommendation-quality reports, A/B analysis, guardrails. Not built
yet.
"""
