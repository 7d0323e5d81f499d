"""Spark jobs that turn the event lake into the offline feature tables of ``feature_repo/tables.py``.

Listed in ``feature_repo/.feastignore``: Feast must not import Spark when it scans the repo. The entry
point is :func:`feature_repo.compute.build.build_features`; the per-table transformations are pure
DataFrame → DataFrame functions in their own modules, so they can be tested on hand-made frames.
"""
