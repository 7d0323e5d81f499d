"""What every ``aisle`` command shares: a log session, ``--verbose``, errors as one sentence, plain help.

Command modules (``cli``, ``cli_models``, ``cli_ui``) wrap each command in :func:`handles_errors`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from aisle.core.console import emit_summary, err_console
from aisle.core.errors import AisleError, JobFailed
from aisle.core.settings import get_settings

F = TypeVar("F", bound=Callable[..., Any])


def _plain_help() -> None:
    """Help without type markers: typer 0.29 prints ``<bool>``, ``<int>``, ``<list[Path]>`` after every
    parameter (``--help`` included) and has no setting to turn that off. Our help texts and defaults say
    what a value is, so the marker column goes; an option's explicit ``metavar`` is still shown.
    """
    from typer.core import TyperArgument, TyperOption

    def option_marker(self: TyperOption, ctx: Any) -> str | None:
        return self.metavar or None

    def argument_marker(self: TyperArgument, ctx: Any) -> str | None:
        return None

    TyperOption.display_type_rich = option_marker  # type: ignore[method-assign]
    TyperArgument.display_type_rich = argument_marker  # type: ignore[method-assign,assignment]


_plain_help()

VERBOSE_HELP = "Show third-party logs (Airflow, Spark, TensorFlow, Feast) here too, not only in the log file."
_root_verbose = [False]


def set_verbose(value: bool) -> None:
    """``aisle --verbose COMMAND`` (the root option); ``COMMAND --verbose`` works as well."""
    _root_verbose[0] = value


def handles_errors(func: F) -> F:
    """Run a command inside a log session and turn errors into one red sentence and an exit code.

    Every command gets ``--verbose``. Third-party output goes to ``$AISLE_HOME/logs/`` (see
    ``aisle.core.logs``); its path is printed when something landed there or the command failed. An
    AisleError exits 1 or 2 with its sentence; an unexpected exception exits 1 with one line, and its
    traceback goes to the log file, never to the terminal.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, verbose: bool = False, **kwargs: Any) -> Any:
        try:
            settings = get_settings()
            return _in_session(settings, func, args, kwargs, verbose or _root_verbose[0])
        except AisleError as exc:  # settings or the log file itself: nothing ran yet
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
            raise typer.Exit(exc.exit_code) from None

    signature = inspect.signature(func, eval_str=True)  # the command module's names, not this one's
    params = list(signature.parameters.values())
    option = inspect.Parameter(
        "verbose",
        inspect.Parameter.KEYWORD_ONLY,
        default=False,
        annotation=Annotated[bool, typer.Option("--verbose", "-v", help=VERBOSE_HELP)],
    )
    wrapper.__signature__ = signature.replace(parameters=[*params, option])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {
        **{p.name: p.annotation for p in params},
        "verbose": option.annotation,
        "return": signature.return_annotation,
    }
    return wrapper  # type: ignore[return-value]


def _in_session(settings: Any, func: Callable[..., Any], args: Any, kwargs: Any, verbose: bool) -> Any:
    from aisle.core.logs import log_session

    job = func.__name__.removesuffix("_cmd").replace("_", "-")  # models_list_cmd → models-list
    with log_session(settings, job, verbose=verbose) as session:
        failed = True
        try:
            result = _translated(func, args, kwargs)
            failed = False
            return result
        except typer.Exit as exc:
            failed = exc.exit_code != 0
            raise
        finally:
            if failed or session.has_output():
                err_console.print(f"[dim]log: {session.path}[/]", highlight=False)


def _translated(func: Callable[..., Any], args: Any, kwargs: Any) -> Any:
    """Call the command; every failure becomes ``typer.Exit`` with Aisle's exit code and one line."""
    from aisle.core.logs import record_exception

    try:
        return func(*args, **kwargs)
    except JobFailed as exc:  # a failed job still prints its full summary, last on stdout
        emit_summary(exc.job, {**exc.summary, "ok": False, "error": str(exc)})
        err_console.print(f"[bold red]failed:[/] {exc}", highlight=False)
        raise typer.Exit(exc.exit_code) from None
    except AisleError as exc:
        record_exception(f"command failed: {exc}")
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        raise typer.Exit(130) from None
    except typer.Exit:
        raise
    except Exception as exc:
        record_exception("unexpected error")
        err_console.print(f"[bold red]error:[/] unexpected {type(exc).__name__}: {exc}", highlight=False)
        raise typer.Exit(1) from None
