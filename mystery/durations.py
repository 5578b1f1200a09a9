"""Durations as people write them in study files and read them in reports.

Study files say ``cutoff = "7d"`` and reports say ``9 h 03 min``: both directions live here so
that a value read from a file prints back the way a researcher would write it. Hand-written
because the accepted grammar is tiny and the output format (the one published surveys use) is
ours; ``pytimeparse``-style libraries accept far more than we want to document.
"""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(min|s|m|h|d|w)")


def parse_duration(text: str) -> timedelta:
    """Parse ``"7d"``, ``"1h30m"``, ``"90s"``, ``"2w"`` into a timedelta.

    Raises ValueError with the accepted forms, so validation can pass the message on.
    """
    raw = text.strip().lower().replace(" ", "")
    if not raw:
        raise ValueError("empty duration; write e.g. '7d', '36h', '1h30m' or '90s'")
    pos = 0
    seconds = 0.0
    for match in _PART.finditer(raw):
        if match.start() != pos:
            break
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(raw):
        raise ValueError(
            f"cannot read duration {text!r}; write e.g. '7d', '36h', '1h30m' or '90s' "
            "(units: s, m, h, d, w)"
        )
    return timedelta(seconds=seconds)


def format_duration(seconds: float | None) -> str:
    """Human form used in every table: ``45 s``, ``9 min``, ``9 h 03 min``, ``2 d 4 h``.

    Minutes are rounded (never truncated) once the value passes a minute, because published
    surveys quote whole minutes; ``None`` (no value) prints as an em dash.
    """
    if seconds is None:
        return "—"
    if seconds < 0:  # a change between years can be negative: faster
        return "-" + format_duration(-seconds)
    if seconds < 60:
        return f"{round(seconds)} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def format_span(delta: timedelta) -> str:
    """Coarser form for the runner's notices (a wait, a late send, a grace window): ``45 s``,
    ``12 min``, ``3.5 h``. One unit, so that a countdown line reads at a glance."""
    seconds = max(0, round(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"
