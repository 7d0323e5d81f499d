"""Feast feature repository (entities, sources, views, services) and compute/ Spark jobs. Built in the
feature-store issue.
"""
