"""Training runs as stages on disk: prepare → fit (one task per model) → evaluate → gate → register.

Modules, one job each: ``params`` (the run's parameters; light, DAG files import it), ``layout`` (every
file of a run, named once, and the run's manifest), ``table`` (model name → fit / save / load / score),
``policy`` (the one place the hybrid policy is assembled from fitted parts), ``ranker_data`` (the
ranker's training set and the cold-start choice), ``scoring`` (models on a run's holdout), ``stages``
(the thin stages the CLI, the demo and the DAG run through ``aisle.app.jobs.models``). MLflow is only
reached through ``models.registry``. Nothing here is imported by this package itself, so importing
``models.training.params`` stays cheap.
"""
