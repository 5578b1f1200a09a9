"""The ``mystery`` command: a thin skin over the library, one module per noun, assembled here.

Each command parses its options, calls one library function and renders the result. What
several commands share (the study argument, ``--db``, CSV and JSON on stdout) is in
:mod:`mystery.cli.options`; the consoles and the one place errors become messages in
:mod:`mystery.cli.console`. Errors from
the library (``MysteryError``) become one message on stderr and exit 1; usage errors exit 2 (Typer).
Heavy libraries (polars, matplotlib, tweepy) are imported inside the commands that need them so
that ``mystery --help`` stays fast.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from mystery.cli import analysis, auth, code, collect, manual, sandbox
from mystery.cli import log as log_command
from mystery.cli import pack as pack_command
from mystery.cli import store as store_command

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
store_command.register(app)
pack_command.register(app)


def main() -> None:
    """Run the CLI (``mystery.__main__`` calls it, after the signal handling is in place).

    SIGTERM stops a command as Ctrl-C does (:mod:`mystery.interrupts`); installed here too, so
    that an older console script pointing at this function keeps that promise. Each command
    answers an interrupt itself (``friendly_errors``). One that comes earlier, while Typer
    builds the command line (a traceback) or parses it (a silent exit 130; its first parse
    imports pydantic, a window of a few hundred milliseconds), gets the same words here.
    """
    from mystery.interrupts import INTERRUPTED, keep_exit_code, stop_like_ctrl_c

    stop_like_ctrl_c()
    try:
        app()
    except KeyboardInterrupt:
        sys.stderr.write(INTERRUPTED + "\n")
        keep_exit_code()
        raise SystemExit(130) from None
    except SystemExit as exc:
        if _silenced_interrupt(exc):
            sys.stderr.write(INTERRUPTED + "\n")
        if exc.code == 130:
            keep_exit_code()
        raise


def _silenced_interrupt(exc: SystemExit) -> bool:
    """Whether Typer ended on an interrupt without a word: it exits 130 through a
    ``typer.Exit`` raised *from* the ``KeyboardInterrupt``, while a command's own answer has
    printed the message already and chains nothing (``raise typer.Exit(130) from None``)."""
    context = exc.__context__
    return (exc.code == 130 and isinstance(context, typer.Exit)
            and isinstance(context.__cause__, KeyboardInterrupt))
