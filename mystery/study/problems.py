"""Where a problem in a study file is, and how to say it to the researcher.

pydantic names a problem by its location, a tuple such as ``('brands', 3, 'handles', 'x')``,
and a terse message. :func:`~mystery.study.load.load_study` reports each as ``file: line N:
key.path: message (fix)``: the key path as the file writes it (:func:`key_path`), the line that
sets it, so that an editor can jump there (:func:`line_of`), and a message that says how to fix
it (:func:`error_hint`).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic_core import ErrorDetails


def key_path(loc: tuple[int | str, ...], data: dict[str, Any]) -> str:
    """``('brands', 3, 'handles', 'x')`` → ``brands[3].handles.x`` (0-based like TOML arrays)."""
    out = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker for an invalid dict key: the key is named already
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def error_hint(error: ErrorDetails) -> str:
    """What to tell the researcher about one pydantic error: a fix where pydantic's own words
    would not say one, else its message without the ``Value error, `` prefix."""
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key; check its spelling against the study file reference in README.md"
    if kind == "missing":
        return "required key is missing; add it"
    if kind == "string_too_short":
        return "is empty; give it a value"
    if kind == "literal_error" and error["loc"] and error["loc"][-1] == "mode":
        return "mode must be one of auto, confirm, manual"
    msg = str(error["msg"])
    return msg.removeprefix("Value error, ")


_TABLE = re.compile(r"^\[\[?\s*([^\]]+?)\s*\]\]?")
_KEY = re.compile(r"^([A-Za-z0-9_.\"' -]+?)\s*=")


def _toml_path(dotted: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in dotted.split("."))


def line_of(text: str, loc: tuple[int | str, ...]) -> str:
    """The line that sets the deepest part of ``loc`` (``line 12: ``), so an editor can jump
    there; empty when the key is absent from the file (missing, or from the brands CSV).

    Follows ``[table]`` and ``[[array]]`` headers, counting array entries, so
    ``brands[1].name`` points at the second brand's ``name``, not at the study's."""
    target = tuple(part for part in loc if part != "[key]")
    table: tuple[int | str, ...] = ()
    entries: dict[tuple[str, ...], int] = {}
    best, best_depth = "", 0
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if header := _TABLE.match(stripped):
            names = _toml_path(header.group(1))
            if stripped.startswith("[["):
                entries[names] = entries.get(names, -1) + 1
                table = (*names, entries[names])
            else:
                table = names
            path = table
        elif key := _KEY.match(stripped):
            path = (*table, *_toml_path(key.group(1)))
        else:
            continue
        if len(path) > best_depth and target[: len(path)] == path:
            best, best_depth = f"line {number}: ", len(path)
        elif len(target) > best_depth and path[:-1] == target and isinstance(path[-1], int):
            # The target is an array of tables: its first entry stands for the whole array.
            best, best_depth = f"line {number}: ", len(target)
    return best
