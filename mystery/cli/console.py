"""Where the CLI writes: data to stdout, progress and messages to stderr (rich consoles).

Library code never prints; it returns values or raises. Only ``mystery.cli`` uses these
consoles.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import typer

from mystery.errors import MysteryError
from mystery.interrupts import INTERRUPTED

if TYPE_CHECKING:
    from rich.console import Console


def shown_path(path: Path) -> str:
    """A path as a message shows it: relative to the working folder when it is inside it
    (``results/demo/summary.csv``), whole otherwise."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


@functools.cache
def out_console() -> Console:
    """The console for data (stdout): a real rich Console, made on first use.

    A function, not a module-level object: importing rich.console costs ~45 ms, which
    ``mystery --help`` must not pay (help no slower than 1.5 × importing typer). An earlier
    stand-in object that forwarded attribute lookups broke everything that looks on the
    type, such as the ``with console:`` of rich's live display: this returns the Console
    itself, so whatever rich does with a console works.
    """
    import sys

    from rich.console import Console

    # Piped or captured, a table is never cut to 80 columns ("Brightl…"): a script or a CI log
    # gets every cell whole; a terminal gets its own width.
    width = None if sys.stdout.isatty() else 10_000
    return Console(highlight=False, soft_wrap=True, width=width)


@functools.cache
def err_console() -> Console:
    """The console for progress, notices and errors (stderr); one per process, so a message
    printed while the live view runs lands above it rather than through it."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


P = ParamSpec("P")
R = TypeVar("R")


def friendly_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn a library error into one message on stderr and exit 1: never a traceback.

    A decorator on each command (rather than a wrapper around ``app()``) so that tests driving
    the app with ``typer.testing.CliRunner`` see exactly what a user sees.
    """

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except MysteryError as exc:
            err_console().print(f"Error: {exc}", markup=False, highlight=False)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err_console().print(INTERRUPTED, markup=False, highlight=False)
            raise typer.Exit(130) from None

    return wrapper
