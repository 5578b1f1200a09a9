"""The ``mystery`` command: a thin skin over the library.

Each command parses its options, calls one library function and renders the result. Errors from
the library (``MysteryError``) become one message on stderr and exit 1; usage errors exit 2 (Typer).
Heavy libraries (polars, matplotlib, tweepy) are imported inside the commands that need them so
that ``mystery --help`` stays fast.
"""

from __future__ import annotations

from typing import Annotated

import typer

from mystery.commands import analysis, auth, code, collect, manual, sandbox
from mystery.commands import log as log_command

app = typer.Typer(
    name="mystery",
    help="Measure how fast brands answer their customers (mystery-shopper studies on X and "
    "other channels), from the platforms' own timestamps.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        from mystery import __version__

        typer.echo(f"mystery {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Measure how fast brands answer their customers."""


collect.register(app)
manual.register(app)
analysis.register(app)
sandbox.register(app)
auth.register(app)
code.register(app)
log_command.register(app)


def main() -> None:
    """Console-script entry point (``mystery`` and ``python -m mystery``)."""
    app()
