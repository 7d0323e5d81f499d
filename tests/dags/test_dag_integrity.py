"""Every file in dags/ imports cleanly and follows the house rules for DAG files."""

from __future__ import annotations

import ast
from typing import Any

from tests.dags.conftest import dag_files

HEAVY = {"tensorflow", "pyspark", "feast", "mlflow", "great_expectations", "evidently", "bentoml", "pandas"}


def test_no_import_errors(dagbag: Any) -> None:
    assert dagbag.import_errors == {}


def test_one_dag_per_file_named_after_it(dagbag: Any) -> None:
    files = {p.stem for p in dag_files()}
    assert files, "dags/ is empty"
    assert set(dagbag.dags) == files


def test_house_rules(dagbag: Any) -> None:
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags and "aisle" in dag.tags, dag_id
        assert dag.doc_md, f"{dag_id} has no doc_md"
        assert dag.default_args.get("retries", 0) >= 1, dag_id
        assert not dag.catchup, dag_id


def test_dag_files_import_no_heavy_libraries_at_top_level() -> None:
    for path in dag_files():
        tree = ast.parse(path.read_text())
        for node in tree.body:
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in HEAVY, f"{path.name} imports {name} at top level"
