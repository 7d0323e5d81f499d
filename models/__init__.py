"""Recommendation models: baselines, two-tower retrieval, Wide & Deep ranking, evaluation, MLflow
registry. Built in the models issue.
"""
