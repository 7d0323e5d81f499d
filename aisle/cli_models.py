"""Model commands: ``aisle train``, ``evaluate``, ``recommend-batch`` and ``models list|promote|rollback``.

Kept apart from ``aisle.cli`` so the base command stays small; ``register`` attaches them to the app.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from aisle.console import configure_logging, counting_progress, emit_summary, staged_progress
from aisle.settings import get_settings

MODELS_HELP = (
    "Comma-separated models: popularity, trending, cooccurrence, item_knn, als, two_tower, wide_deep "
    "(default: all; the registered hybrid needs two_tower and wide_deep)."
)


def _params(models: str | None, **values: Any) -> Any:
    from models.pipeline import TrainParams

    raw: dict[str, Any] = {k: v for k, v in values.items() if v is not None}
    if models:
        raw["models"] = models
    return TrainParams.from_dict(raw)


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
        holdout_days: Annotated[
            int | None, typer.Option(help="Days at the end held out for evaluation.")
        ] = None,
        seed: Annotated[int | None, typer.Option(help="Seed for sampling and model init.")] = None,
    ) -> None:
        """Train, evaluate on a temporal holdout, gate against champion and popularity, refit and register."""
        from models.pipeline import stage_names, train_all

        params = _params(
            models,
            epochs=epochs,
            embedding_dim=embedding_dim,
            learning_rate=learning_rate,
            holdout_days=holdout_days,
            seed=seed,
        )
        configure_logging(logging.WARNING)
        started = time.perf_counter()
        with staged_progress("train", stage_names(params)) as step:
            summary = train_all(get_settings(), params, step=step)
        emit_summary("train", summary, started)

    @app.command("evaluate")
    @handles_errors
    def evaluate_cmd(
        models: Annotated[str | None, typer.Option(help=MODELS_HELP)] = None,
        epochs: Annotated[int | None, typer.Option(help="Epochs for two-tower and Wide & Deep.")] = None,
        holdout_days: Annotated[
            int | None, typer.Option(help="Days at the end held out for evaluation.")
        ] = None,
        seed: Annotated[int | None, typer.Option(help="Seed for sampling and model init.")] = None,
    ) -> None:
        """Fit on all but the last days and compare every model on them; registers nothing."""
        from models.pipeline import stage_names, train_all

        params = _params(models, epochs=epochs, holdout_days=holdout_days, seed=seed)
        configure_logging(logging.WARNING)
        started = time.perf_counter()
        with staged_progress("evaluate", stage_names(params, register_model=False)) as step:
            summary = train_all(get_settings(), params, step=step, register_model=False)
        emit_summary("evaluate", summary, started)

    @app.command("recommend-batch")
    @handles_errors
    def recommend_batch_cmd(
        users: Annotated[str, typer.Option(help="One user id per line, or a CSV with a user_id column.")],
        out: Annotated[Path, typer.Option(help="Output CSV: user_id,item_id,rank,score.")] = Path("recs.csv"),
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
        from models.batch import recommend_batch
        from models.data import read_user_file

        configure_logging(logging.WARNING)
        started = time.perf_counter()
        total = len(read_user_file(users))
        with counting_progress("recommend", total) as advance:
            summary = recommend_batch(
                get_settings(),
                users,
                k,
                out,
                include_seen=include_seen,
                version=version,
                alias=alias,
                advance=advance,
            )
        emit_summary("recommend-batch", summary, started)

    @models_app.command("list")
    @handles_errors
    def models_list_cmd() -> None:
        """Registered versions, newest first, with aliases and the metrics they were gated on."""
        from models import registry

        settings = get_settings()
        emit_summary(
            "models.list",
            {
                "model": registry.REGISTERED_MODEL,
                "champion": registry.alias_version(settings, registry.CHAMPION),
                "challenger": registry.alias_version(settings, registry.CHALLENGER),
                "versions": registry.list_versions(settings),
            },
        )

    @models_app.command("promote")
    @handles_errors
    def models_promote_cmd(
        version: Annotated[str, typer.Argument(help="Version to make champion.")],
        reason: Annotated[str, typer.Option(help="Why (recorded on the version).")] = "manual promotion",
    ) -> None:
        """Make a version the champion by hand (the reason is kept on the version)."""
        from models import registry

        emit_summary("models.promote", registry.promote(get_settings(), version, reason))

    @models_app.command("rollback")
    @handles_errors
    def models_rollback_cmd() -> None:
        """Point champion back at the version that held it before the current one."""
        from models import registry

        emit_summary("models.rollback", registry.rollback(get_settings()))
