"""The study file and what follows from it alone: the model and its loading, checks,
problems, the brands CSV, warnings, the plan and the cost estimate.

Modules: brandscsv, checks, cost, load, model, plan, problems, reschedule, warnings.
Callers import from the modules themselves; the few names below are re-exported lazily, so
importing one module of this package loads none of the others.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mystery.study.load import LoadedStudy as LoadedStudy
    from mystery.study.load import load_study as load_study
    from mystery.study.model import Study as Study

__all__ = ["LoadedStudy", "Study", "load_study"]
_WHERE = {"Study": "model", "LoadedStudy": "load", "load_study": "load"}


def __getattr__(name: str) -> object:
    if name in _WHERE:
        return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
