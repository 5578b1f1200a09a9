"""The SQLite store of one study: reads, rows, migrations and the one-runner lock.

Modules: connection, lock, migrations, reads, rows, store.
Callers import from the modules themselves; the few names below are re-exported lazily, so
importing one module of this package loads none of the others.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mystery.store.store import Store as Store

__all__ = ["Store"]
_WHERE = {"Store": "store"}


def __getattr__(name: str) -> object:
    if name in _WHERE:
        return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
