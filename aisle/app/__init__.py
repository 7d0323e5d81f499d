"""The application floor: the `aisle` CLI, one jobs module per stage, the demo, the DAG runner and the
supervisor of the embedded services. The only place that composes stages; nothing below imports it."""
