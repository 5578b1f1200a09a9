"""One study for every test that needs a study file: a complete sandbox study, as plain data.

Why: tests used to paste their own study TOML, each a slightly different copy of the same
twenty lines, so a change to the study format meant editing them all and a reader could not
see what a test's study changes. Here a test names only what differs from the shared study
(``study_data(cutoff="1d", schedule={...})``) and :func:`write_study` writes it with tomli-w,
so the file is always valid TOML and brands or questions are built as data, not by string
formatting. Tests whose point is the file's text (line numbers, typos, invalid TOML) keep
their text: that is test data.

Imported as a module of the ``tests`` package: ``from tests.studybuilder import write_study``.
"""

from __future__ import annotations

import copy
from datetime import date
from pathlib import Path
from typing import Any

import tomli_w

STUDY: dict[str, Any] = {
    "name": "study",
    "year": 2026,
    "timezone": "Europe/London",
    "cutoff": "2d",
    "synthetic": True,
    "channels": {"x": {"account": "mystery_res", "endpoint": "sandbox", "poll_every": "30m"}},
    "questions": [{"id": "delivery", "text": "Hi {brand}, do you deliver on Sundays?"}],
    "schedule": {
        "start": date(2026, 3, 2),
        "end": date(2026, 3, 3),
        "probes_per_brand": 2,
        "min_gap": "4h",
        "seed": 1,
    },
    "brands": [
        {"name": "Acme", "handles": {"x": "Acme"}, "profile": "quick"},
        {"name": "Globex", "handles": {"x": "Globex"}, "profile": "quick"},
    ],
    "sandbox": {"seed": 1, "profiles": {"quick": {"ack_median": "20m"}}},
}
"""The shared study: 2 brands × 2 probes on X in the sandbox, Monday 2 to Tuesday 3 March 2026,
both brands acknowledging within about 20 minutes. Never changed by a test (copied)."""


def study_data(**overrides: Any) -> dict[str, Any]:
    """The shared study with ``overrides`` applied, as a dict that ``tomli_w`` can write.

    Each keyword replaces one top-level key or a whole section (``channels``, ``questions``,
    ``schedule``, ``brands``, ``sandbox``): a test spells out the section it changes, so what
    its study holds is read in one place. ``None`` removes the key (the model's default then
    applies, e.g. ``timezone=None`` is UTC, ``sandbox=None`` has no profiles).
    """
    return _changed(STUDY, overrides)


def write_study(folder: Path, data: dict[str, Any] | None = None,
                filename: str = "study.toml", **overrides: Any) -> Path:
    """Write ``data`` (by default the shared study) with ``overrides`` to ``folder / filename``.

    ``filename``, not ``name``: ``name`` is the study's own key, and an override like any other.
    """
    data = _changed(STUDY if data is None else data, overrides)
    path = folder / filename
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


def _changed(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of ``data`` with each override set, or removed when it is ``None``."""
    changed = copy.deepcopy(data)
    for key, value in overrides.items():
        if value is None:
            changed.pop(key, None)
        else:
            changed[key] = copy.deepcopy(value)
    return changed
