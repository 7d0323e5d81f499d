"""``aisle ui``: start (or find) the web UIs against the current ``$AISLE_HOME`` and print where they are.

Kept apart from ``aisle.app.cli`` so the base command stays small; ``register`` attaches it to the app.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from aisle.core.console import emit_summary, err_console
from aisle.core.settings import get_settings


def register(app: typer.Typer, handles_errors: Callable[[Any], Any]) -> None:
    """Attach ``aisle ui`` to the ``aisle`` app."""

    @app.command("ui")
    @handles_errors
    def ui_cmd(
        which: Annotated[
            str,
            typer.Argument(metavar="WHICH", help="mlflow, airflow, evidently, docs or all."),
        ] = "all",
        stop: Annotated[
            bool,
            typer.Option("--stop", help="Stop the UIs that `aisle ui` started, with all their processes."),
        ] = False,
    ) -> None:
        """Start (or find) the web UIs on free local ports and print their URLs and logins."""
        from aisle.app import ui

        names = ui.selected(which)
        settings = get_settings()
        if stop:
            stopped = ui.ui_down(settings, names)
            for name, info in stopped.items():
                if info["stopped"] or which != "all":
                    err_console.print(f"{name:10} {info['note']}", highlight=False)
            if which == "all" and not any(info["stopped"] for info in stopped.values()):
                err_console.print("no UI was running", highlight=False)
            emit_summary("ui.stop", {"uis": stopped})
            return
        with err_console.status(
            f"starting {', '.join(names)} (a server may need a minute on a busy machine)"
        ):
            found = ui.ui_up(settings, names)
        for name, info in found.items():
            if info["url"]:
                err_console.print(
                    f"[bold]{name:10}[/] {info['url']}  [dim]({info['state']})[/]", highlight=False
                )
                err_console.print(f"{'':10} {info['title']}; login: {info['login']}", highlight=False)
            else:
                err_console.print(f"[bold]{name:10}[/] [yellow]{info['note']}[/]", highlight=False)
        if any(info["state"] in ("started", "running") for info in found.values()):
            err_console.print(f"stop them with: {ui.aisle_command(settings)} ui --stop", highlight=False)
        # asked for one UI that cannot open: that is a failure; `all` opens what this build has
        ok = which == "all" or all(info["url"] for info in found.values())
        emit_summary("ui", {"uis": found, "ok": ok})
        if not ok:
            raise typer.Exit(1)
