"""Model commands: ``aisle train``, ``evaluate``, ``recommend-batch`` and ``models list|promote|rollback``.

Kept apart from ``aisle.app.cli`` so the base command stays small; ``register`` attaches them to the app.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from aisle.core.console import counting_progress, emit_summary, err_console, print_table, staged_progress
from aisle.core.settings import get_settings

MODELS_HELP = (
    "Comma-separated models: popularity, recent_popularity, trending, cooccurrence, item_knn, "
    "item_knn_decay, session_knn, als, two_tower, wide_deep, sasrec (default: all; the registered hybrid "
    "needs two_tower and wide_deep, and uses sasrec when it is trained)."
)
TEST_FRACTION_HELP = "Share of the events, at the end, that form the test period (default 0.1)."
TEST_START_HELP = "Test period from this date or time on (wins over --holdout-days and --test-fraction)."
HOLDOUT_HELP = "Days at the end held out for evaluation (wins over --test-fraction)."
VALIDATION_HELP = "Share of the training events, at their end, that tuning and the ranker's labels use."


def _params(models: str | None, **values: Any) -> Any:
    from aisle.app.jobs.models import train_params

    raw: dict[str, Any] = {k: v for k, v in values.items() if v is not None}
    if models:
        raw["models"] = models
    return train_params(raw)


def register(app: typer.Typer, handles_errors: Callable[[Any], Any]) -> None:
    """Attach the model commands to the ``aisle`` app."""
    models_app = typer.Typer(help="The registered policy's versions and its champion/challenger aliases.")
    app.add_typer(models_app, name="models", no_args_is_help=True)

    @app.command("train")
    @handles_errors
    def train_cmd(
        models: Annotated[str | None, typer.Option(help=MODELS_HELP)] = None,
        epochs: Annotated[int | None, typer.Option(help="Epochs for two-tower and Wide & Deep.")] = None,
        embedding_dim: Annotated[int | None, typer.Option(help="Two-tower embedding size.")] = None,
        learning_rate: Annotated[float | None, typer.Option(help="Two-tower learning rate.")] = None,
        holdout_days: Annotated[int | None, typer.Option(help=HOLDOUT_HELP)] = None,
        test_fraction: Annotated[float | None, typer.Option(help=TEST_FRACTION_HELP)] = None,
        test_start: Annotated[str | None, typer.Option(help=TEST_START_HELP)] = None,
        validation_fraction: Annotated[float | None, typer.Option(help=VALIDATION_HELP)] = None,
        backtest: Annotated[
            int | None,
            typer.Option(
                help="Also evaluate at this many cut-offs rolling back; the gate refuses a policy worse "
                "than any fold's strongest simple baseline."
            ),
        ] = None,
        seed: Annotated[int | None, typer.Option(help="Seed for sampling and model init.")] = None,
    ) -> None:
        """Train, evaluate on a strict time split, gate against the champion and the strongest simple
        baseline, refit on all data and register."""
        from aisle.app.jobs import models as jobs

        params = _params(
            models,
            epochs=epochs,
            embedding_dim=embedding_dim,
            learning_rate=learning_rate,
            holdout_days=holdout_days,
            test_fraction=test_fraction,
            test_start=test_start,
            validation_fraction=validation_fraction,
            backtest=backtest,
            seed=seed,
        )
        started = time.perf_counter()
        with staged_progress("train", jobs.train_stages(params)) as step:
            summary = jobs.train(get_settings(), params, progress=step)
        emit_summary("train", summary, started)

    @app.command("evaluate")
    @handles_errors
    def evaluate_cmd(
        models: Annotated[str | None, typer.Option(help=MODELS_HELP)] = None,
        epochs: Annotated[int | None, typer.Option(help="Epochs for two-tower and Wide & Deep.")] = None,
        holdout_days: Annotated[int | None, typer.Option(help=HOLDOUT_HELP)] = None,
        test_fraction: Annotated[float | None, typer.Option(help=TEST_FRACTION_HELP)] = None,
        test_start: Annotated[str | None, typer.Option(help=TEST_START_HELP)] = None,
        validation_fraction: Annotated[float | None, typer.Option(help=VALIDATION_HELP)] = None,
        backtest: Annotated[
            int | None, typer.Option(help="Repeat at this many cut-offs rolling back in time.")
        ] = None,
        seed: Annotated[int | None, typer.Option(help="Seed for sampling and model init.")] = None,
    ) -> None:
        """Fit on the past and compare every model, baselines and the policy, on the future (a strict time
        split, or a backtest over several cut-offs); registers nothing."""
        from aisle.app.jobs import models as jobs

        params = _params(
            models,
            epochs=epochs,
            holdout_days=holdout_days,
            test_fraction=test_fraction,
            test_start=test_start,
            validation_fraction=validation_fraction,
            backtest=backtest,
            seed=seed,
        )
        started = time.perf_counter()
        with staged_progress("evaluate", jobs.train_stages(params, register_model=False)) as step:
            summary = jobs.evaluate(get_settings(), params, progress=step)
        emit_summary("evaluate", summary, started)

    @app.command("recommend-batch")
    @handles_errors
    def recommend_batch_cmd(
        users: Annotated[str, typer.Option(help="One user id per line, or a CSV with a user_id column.")],
        out: Annotated[
            Path, typer.Option(help="Output CSV with the columns user_id, item_id, rank, score.")
        ] = Path("recs.csv"),
        k: Annotated[int, typer.Option(help="Recommendations per user.")] = 10,
        include_seen: Annotated[
            bool, typer.Option(help="Allow items the user already interacted with.")
        ] = False,
        version: Annotated[
            str | None, typer.Option(help="Registered version (default: the champion).")
        ] = None,
        alias: Annotated[str, typer.Option(help="Alias to use when no version is given.")] = "champion",
    ) -> None:
        """Top-K recommendations for a list of users from the registered policy."""
        from aisle.app.jobs import models as jobs

        params = jobs.RecommendParams(
            users=users, out=str(out), k=k, include_seen=include_seen, version=version, alias=alias
        )
        started = time.perf_counter()
        with counting_progress("recommend", jobs.count_users(params)) as advance:
            summary = jobs.recommend_batch(get_settings(), params, progress=advance)
        emit_summary("recommend-batch", summary, started)

    @models_app.command("list")
    @handles_errors
    def models_list_cmd() -> None:
        """Registered versions, newest first, with aliases and the metrics they were gated on."""
        from aisle.app.jobs import models as jobs

        listed = jobs.list_models(get_settings())
        rows = [
            [
                v["version"],
                ",".join(v["aliases"]),
                v["created"][:16].replace("T", " "),
                v.get("ndcg_at_10.challenger"),
                v.get("ndcg_at_10.popularity"),
                {"True": "passed", "False": "refused"}.get(str(v.get("gate.passed")), v.get("gate.passed")),
                str(v.get("trained_through", ""))[:10],
            ]
            for v in listed["versions"]
        ]
        err_console.print(f"[bold]{listed['model']}[/]", highlight=False)
        print_table(
            ["version", "aliases", "registered UTC", "NDCG@10", "popularity", "gate", "data through"],
            rows,
            empty="no registered versions yet: run `aisle train` (or `aisle demo`)",
        )
        emit_summary("models.list", listed)

    @models_app.command("promote")
    @handles_errors
    def models_promote_cmd(
        version: Annotated[str, typer.Argument(help="Version to make champion.")],
        reason: Annotated[str, typer.Option(help="Why (recorded on the version).")] = "manual promotion",
    ) -> None:
        """Make a version the champion by hand (the reason is kept on the version)."""
        from aisle.app.jobs import models as jobs

        emit_summary("models.promote", jobs.promote(get_settings(), {"version": version, "reason": reason}))

    @models_app.command("rollback")
    @handles_errors
    def models_rollback_cmd() -> None:
        """Point champion back at the version that held it before the current one."""
        from aisle.app.jobs import models as jobs

        emit_summary("models.rollback", jobs.rollback(get_settings()))
