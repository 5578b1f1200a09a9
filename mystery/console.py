"""Where the CLI writes: data to stdout, progress and messages to stderr (rich consoles).

Library code never prints; it returns values or raises. Only ``mystery.cli`` and
``mystery.commands`` use these consoles.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console

from mystery.errors import MysteryError

out_console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

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
            err_console.print(f"Error: {exc}", markup=False, highlight=False)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err_console.print(
                "Interrupted. The store is consistent: run the same command again to resume."
            )
            raise typer.Exit(130) from None

    return wrapper
