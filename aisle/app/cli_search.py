"""Search commands: ``aisle search build`` and ``aisle search query``; ``register`` attaches them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from aisle.core.console import counting_progress, emit_summary, err_console
from aisle.core.settings import get_settings


def register(app: typer.Typer, handles_errors: Callable[[Any], Any]) -> None:
    search_app = typer.Typer(help="Search the catalog by meaning: build the index, ask it.")
    app.add_typer(search_app, name="search", no_args_is_help=True)

    @search_app.command("build")
    @handles_errors
    def build_cmd(
        threads: Annotated[int, typer.Option(help="CPU threads for embedding.")] = 2,
    ) -> None:
        """Embed the lake's catalog (title, description, category) into the faiss search index."""
        from aisle.app.jobs import search

        with counting_progress("embedding items", None) as advance:
            done = [0]

            def progress(n: int, _total: int) -> None:
                advance(n - done[0])
                done[0] = n

            summary = search.build(get_settings(), {"threads": threads}, progress=progress)
        state = "built" if summary["built"] else "already up to date"
        err_console.print(f"search index of {summary['items']} items {state}: {summary['path']}")
        emit_summary("search.build", summary)

    @search_app.command("query")
    @handles_errors
    def query_cmd(
        text: Annotated[str, typer.Argument(help="What to look for, in any words.")],
        k: Annotated[int, typer.Option(help="How many items.")] = 10,
    ) -> None:
        """Items nearest in meaning to TEXT (the service's POST /search also re-ranks for a shopper)."""
        from aisle.app.jobs import search

        summary = search.query(get_settings(), {"query": text, "k": k})
        for hit in summary["items"]:
            err_console.print(f"{hit['similarity']:.3f}  {hit['title']}  [dim]{hit['category']}[/]")
        emit_summary("search.query", summary)
