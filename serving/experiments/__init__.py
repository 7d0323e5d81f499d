"""A/B experiments inside the service: definitions, their store and lifecycle, and assignment.

Assignment runs in the service's process on every request, so it lives in the serving stage; the
analysis of what the variants earned lives in ``monitoring.experiments``.
"""
