"""Where the CLI writes: data to stdout, progress and messages to stderr (rich consoles).

Library code never prints; it returns values or raises. Only ``mystery.cli`` and
``mystery.commands`` use these consoles.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import typer

from mystery.errors import MysteryError

if TYPE_CHECKING:
    from rich.console import Console


class _LazyConsole:
    """A rich Console made on first use: importing rich.console costs ~45 ms, which
    ``mystery --help`` must not pay (issue: help no slower than 1.5 × importing typer)."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return getattr(self._console, name)


out_console: Console = _LazyConsole(highlight=False, soft_wrap=True)  # type: ignore[assignment]
err_console: Console = _LazyConsole(  # type: ignore[assignment]
    stderr=True, highlight=False, soft_wrap=True
)

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
