"""A run and its collaborators: connect, runner, pacing, polling, budget, safeguards,
the manual/confirm modes and their ledger, the hand-logged channels.

Modules: budget, connect, handcsv, handlog, handoff, ledger, manual, outgoing, pacing, polling,
progress, run, runner, safeguards, together (one runner for several accounts), verify.
Callers import from the modules themselves; the few names below are re-exported lazily, so
importing one module of this package loads none of the others.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mystery.collect.run import run_study as run_study

__all__ = ["run_study"]
_WHERE = {"run_study": "run"}


def __getattr__(name: str) -> object:
    if name in _WHERE:
        return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
