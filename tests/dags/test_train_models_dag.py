"""train_models through Airflow's dag.test(): on a tiny shop, then recommend-batch from what it registered;
and the `backtest` param's way from the trigger form to the gate."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from aisle.app.cli import app
from aisle.app.dag_runner import execute_dag
from aisle.app.jobs import features as features_jobs
from aisle.app.jobs import shop as shop_jobs
from aisle.app.services import embedded_services
from aisle.core.settings import Settings
from ingestion.batch import ingest_batch
from models import registry
from models.batch import recommend_batch
from models.data import load_events

PARAMS = {
    "models": ["popularity", "trending", "cooccurrence", "two_tower", "wide_deep"],
    "epochs": 2,
    "embedding_dim": 16,
    "holdout_days": 4,
    "reason": "drift in the test shop",
    "tuning_trials": 3,
}


@pytest.mark.integration
@pytest.mark.slow
def test_train_models_dag_registers_a_policy_that_recommends(dag_settings: Settings, tmp_path: Path) -> None:
    shop_jobs.generate(dag_settings, dict(users=500, items=150, days=24, seed=31))
    ingest_batch(dag_settings, [dag_settings.paths.raw / "shop"])
    with embedded_services(dag_settings, kafka=False):
        features_jobs.build(dag_settings)
    result = execute_dag(dag_settings, "train_models", PARAMS)
    assert result["state"] == "success"

    (run,) = sorted((dag_settings.paths.models / "runs").iterdir())
    state = json.loads((run / "state.json").read_text())
    table = pd.read_csv(run / "comparison.csv")
    assert set(table["model"]) == {"popularity", "trending", "cooccurrence", "two_tower", "hybrid"}
    assert set(table["segment"]) == {"all", "with_history", "without_history"}
    gate = state["stages"]["gate"]
    assert "popularity" in gate["comparisons"] and set(gate["checks"]) >= {"no_seen_items", "deterministic"}
    assert gate["passed"] == (not gate["reasons"])  # a refusal always says why
    version = state["stages"]["register"]["version"]
    assert registry.alias_version(dag_settings, registry.CHALLENGER) == version
    assert registry.alias_version(dag_settings, registry.CHAMPION) == (version if gate["passed"] else None)
    # refit on all data: the registered policy was trained through the newest event, holdout included
    events = load_events(dag_settings)
    policy_meta = json.loads((run / "final" / "policy" / "policy.json").read_text())["meta"]
    assert pd.Timestamp(policy_meta["trained_through"]) == events["ts"].max()

    # anyone with only MLflow can load the registered policy as a pyfunc and ask it
    import mlflow

    mlflow.set_tracking_uri(dag_settings.effective_mlflow_uri)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{registry.REGISTERED_MODEL}/{version}")
    asked = pyfunc.predict(pd.DataFrame({"user_id": ["u00001", "nobody"]}), params={"k": 5})
    assert list(asked.columns) == ["user_id", "item_id", "rank", "score"] and len(asked) == 10
    recent = events["item_id"].iloc[-3:].tolist()
    in_session = pyfunc.predict(
        pd.DataFrame({"user_id": ["nobody"], "recent_items": [recent]}), params={"k": 5}
    )
    assert in_session["rank"].tolist() == [1, 2, 3, 4, 5] and in_session["item_id"].is_unique

    # the run records its input data, the table, the plot, the gate's verdict and the policy
    run_info = mlflow.get_run(state["mlflow_run_id"])
    assert [d.dataset.name for d in run_info.inputs.dataset_inputs] == ["event_lake"]
    assert run_info.data.params["data.events_digest"] == state["stages"]["prepare"]["events_digest"]
    assert "hybrid.with_history.ndcg_at_10" in run_info.data.metrics
    # why the run happened travels with it: the conf's reason on the run and the registered version
    assert run_info.data.tags["aisle.reason"] == "trigger: drift in the test shop"
    assert run_info.data.tags["aisle.reason_kind"] == "trigger"
    version_tags = mlflow.MlflowClient().get_model_version(registry.REGISTERED_MODEL, version).tags
    assert version_tags["aisle.reason"] == "trigger: drift in the test shop"
    logged = {a.path for a in mlflow.MlflowClient().list_artifacts(state["mlflow_run_id"])}
    assert {"evaluation", "gate.json", "data_snapshot.json"} <= logged

    # recommend-batch from the registered version: no seen items, no duplicates, unknown users counted
    known = events["user_id"].drop_duplicates().head(40).tolist()
    users_file = tmp_path / "users.csv"
    pd.DataFrame({"user_id": [*known, "nobody-1", "nobody-2"]}).to_csv(users_file, index=False)
    out = tmp_path / "recs.csv"
    summary = recommend_batch(dag_settings, str(users_file), 10, out, version=version)
    assert summary["unknown_users"] == 2 and summary["cold_start"] >= 2 and summary["users"] == 42
    recs = pd.read_csv(out, dtype={"user_id": str, "item_id": str})
    assert list(recs.columns) == ["user_id", "item_id", "rank", "score"]
    assert not recs.duplicated(["user_id", "item_id"]).any()
    assert recs.groupby("user_id").size().max() == 10 and set(recs["user_id"]) == {
        *known,
        "nobody-1",
        "nobody-2",
    }
    seen = events.groupby("user_id")["item_id"].agg(set)
    assert not any(
        item in seen.get(user, set()) for user, item in zip(recs["user_id"], recs["item_id"], strict=True)
    )
    assert (recs.groupby("user_id")["rank"].apply(lambda r: list(r) == list(range(1, len(r) + 1)))).all()
    # one score semantics: known and cold-start shoppers' scores are the ranker's 0..1 estimates
    cold = recs["user_id"].str.startswith("nobody")
    assert recs["score"].between(0, 1).all(), recs.loc[~recs["score"].between(0, 1)]
    assert recs.loc[cold, "score"].median() < 10 * recs.loc[~cold, "score"].median()
    assert (recs.groupby("user_id")["score"].apply(lambda s: s.is_monotonic_decreasing)).all()

    with_seen = recommend_batch(
        dag_settings, str(users_file), 10, tmp_path / "all.csv", version=version, include_seen=True
    )
    assert with_seen["rows"] == 42 * 10

    # the CLI: JSON summary on stdout, bad arguments exit 2
    runner = CliRunner()
    plain = tmp_path / "users.txt"
    plain.write_text("\n".join(known[:5]) + "\nnobody-3\n")
    cli = runner.invoke(
        app,
        [
            "recommend-batch",
            "--users",
            str(plain),
            "--k",
            "5",
            "--out",
            str(tmp_path / "c.csv"),
            "--alias",
            "challenger",
        ],
    )
    assert cli.exit_code == 0, cli.output
    line = json.loads(cli.stdout.strip().splitlines()[-1])
    assert line["job"] == "recommend-batch" and line["unknown_users"] == 1 and line["rows"] == 30
    bad = runner.invoke(app, ["recommend-batch", "--users", str(tmp_path / "missing.txt")])
    assert bad.exit_code == 2 and "no such file" in bad.output
    listed = runner.invoke(app, ["models", "list"])
    assert (
        listed.exit_code == 0 and json.loads(listed.stdout.strip().splitlines()[-1])["challenger"] == version
    )


@pytest.mark.parametrize(("conf", "folds"), [({}, []), ({"backtest": 3}, ["fold-2", "fold-3"])])
def test_backtest_param_reaches_the_gate(
    dag_settings: Settings, monkeypatch: pytest.MonkeyPatch, conf: dict[str, Any], folds: list[str]
) -> None:
    """The form's `backtest` goes into the run, `backtest_folds` runs the N-1 earlier cut-offs and the gate
    holds the policy against them (as `aisle train --backtest N`). The training itself is stubbed here
    (the test above trains for real); the run's manifest and `backtest_folds` job are the real ones."""
    from aisle.app.jobs import models as jobs
    from models.training import backtest
    from models.training.layout import RunLayout, RunState

    calls: dict[str, Any] = {}

    def prepare(settings: Settings, params: Any) -> dict[str, Any]:
        layout = RunLayout.of(settings, "run-1")
        layout.root.mkdir(parents=True, exist_ok=True)
        state = RunState("run-1", "", dataclasses.asdict(jobs.train_params(params)), "2026-01-01T00:00:00")
        return state.record(layout, "prepare", {"run_key": "run-1"})

    def earlier_folds(settings: Settings, params: Any, step: Any = None) -> list[str]:
        calls["earlier_folds"] = params.backtest
        return [f"fold-{n}" for n in range(2, params.backtest + 1)]

    def gate(settings: Settings, params: Any) -> dict[str, Any]:
        calls["gate"] = dict(params)
        return {"passed": False, "reasons": ["stubbed"]}

    monkeypatch.setattr(jobs, "prepare", prepare)
    monkeypatch.setattr(jobs, "models_to_fit", lambda settings, params: ["popularity"])
    monkeypatch.setattr(jobs, "fit", lambda settings, params: {"model": params["model"]})
    monkeypatch.setattr(jobs, "evaluate_run", lambda settings, params: {"models": ["popularity", "hybrid"]})
    monkeypatch.setattr(backtest, "earlier_folds", earlier_folds)
    monkeypatch.setattr(jobs, "gate", gate)
    monkeypatch.setattr(jobs, "register", lambda settings, params: {"version": "1", "promoted": False})

    assert execute_dag(dag_settings, "train_models", conf)["state"] == "success"
    assert calls.get("earlier_folds") == conf.get("backtest")  # not called at all when backtest is 1
    assert calls["gate"] == {"run_key": "run-1", "folds": folds}
