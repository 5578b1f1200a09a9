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
    """Human form used in every table: ``45 s``, ``2 min 38 s``, ``9 h 03 min``,
    ``1 d 4 h 53 min``.

    Rounded for display, never truncated: under an hour to the second (so 90 s and 150 s
    stay apart), beyond to the minute, and a day keeps its hours and minutes (28 h 53 min is
    ``1 d 4 h 53 min``). Units that are zero at the end are left out (``9 min``, ``7 d``,
    ``2 d 4 h``), so a shown unit always means what it says; under a day, hours keep their
    minutes (``1 h 00 min``, as surveys print ``9 h 03 min``). ``None`` (no value) prints as an
    em dash.
    """
    if seconds is None:
        return "—"
    if seconds < 0:  # a change between years can be negative: faster
        return "-" + format_duration(-seconds)
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        minutes, secs = divmod(whole, 60)
        return f"{minutes} min" if secs == 0 else f"{minutes} min {secs:02d} s"
    total = round(seconds / 60)
    hours, minutes = divmod(total, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    if minutes:
        return f"{days} d {hours} h {minutes:02d} min"
    return f"{days} d {hours} h" if hours else f"{days} d"


def short_duration(seconds: float) -> str:
    """``format_duration`` without a trailing zero unit: a cutoff reads ``7 d``, ``9 h``,
    not ``9 h 00 min``."""
    return format_duration(seconds).removesuffix(" 0 h").removesuffix(" 00 min")


#: Decimals of every ``*_minutes`` CSV cell: 1e-6 min is 0.06 ms, so a time known to the
#: millisecond (a platform's timestamp, a published ``2:38``) comes back exactly.
MINUTES_DECIMALS = 6


def minutes_cell(seconds: float) -> str:
    """A time in seconds as minutes for a CSV cell, at full precision (``MINUTES_DECIMALS``).

    The one formatter of every ``*_minutes`` column, so each table keeps the same precision.
    Python's float formatting is correctly rounded, so the digits are the same on every
    machine."""
    return f"{seconds / 60:.{MINUTES_DECIMALS}f}"


def rate_cell(rate: float) -> str:
    """A share for a CSV cell as exactly as it is known: a published 98 % stays ``0.98``,
    66.7 % stays ``0.667``, and 14 of 15 is ``0.933333`` (six decimals at most, trailing
    zeros dropped, at least one decimal)."""
    text = f"{rate:.6f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


_CLOCK = re.compile(r"^(?:(\d+):)?(\d+):(\d{1,2}(?:\.\d+)?)$")
_WORDS = {
    "d": 86400, "day": 86400, "days": 86400,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
}  # fmt: skip
_WORD_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)\s*")
_BOUND = re.compile(r"^\s*(?:[<>≤≥~≈]|<=|>=|under|over|about|around|less than|more than|"
                    r"up to|at least|at most)", re.IGNORECASE)
PUBLISHED_FORMS = "decimal minutes (2.633333), m:ss (2:38), h:mm:ss (9:03:00) or words " \
    "(2 min 38 s, 1 h 05 min, 9 hours 3 minutes)"


def is_bound(text: str) -> bool:
    """``≥ 90 %``, ``< 1 min``, ``over 24 h``, ``24 h+``: a bound a survey printed, not a
    figure."""
    return bool(_BOUND.match(text)) or text.rstrip().endswith("+")


def parse_published_minutes(text: str) -> float:
    """A published time as seconds, from the forms surveys print: decimal minutes (``9``,
    ``2.633333``), a clock (``2:38`` is 2 min 38 s, ``9:03:00`` is 9 h 03 min), or words
    (``2 min 38 s``, ``1 h 05 min``, ``9 hours 3 minutes``).

    A bare ``a:b`` is minutes and seconds, never hours and minutes: write ``9:03:00`` or
    ``9 h 03 min`` for hours. ValueError names the accepted forms, so the importer passes it
    on; a bound (``< 1 min``) is refused: it is not a figure and must not become one.
    """
    raw = text.strip().lower()
    if not raw:
        raise ValueError(f"empty time; write {PUBLISHED_FORMS}")
    if is_bound(raw):
        raise ValueError("is a bound, not a figure; mystery keeps only published figures: "
                         "leave the cell empty and quote the bound in note")
    try:
        minutes = float(raw)
    except ValueError:
        pass
    else:
        if minutes != minutes or minutes in (float("inf"), float("-inf")) or minutes < 0:
            raise ValueError(f"must be zero or more minutes; write {PUBLISHED_FORMS}")
        return minutes * 60
    clock = _CLOCK.match(raw)
    if clock:
        hours, minutes_part, secs = clock.groups()
        if float(secs) >= 60 or (hours is not None and int(minutes_part) >= 60):
            raise ValueError(f"not a clock time (minutes and seconds stop at 59); write "
                             f"{PUBLISHED_FORMS}")
        return int(hours or 0) * 3600 + int(minutes_part) * 60 + float(secs)
    seconds, pos = 0.0, 0
    for part in _WORD_PART.finditer(raw):
        if part.start() != pos or part.group(2) not in _WORDS:
            break
        seconds += float(part.group(1)) * _WORDS[part.group(2)]
        pos = part.end()
    if pos == 0 or pos != len(raw):
        raise ValueError(f"cannot read this time; write {PUBLISHED_FORMS}")
    return seconds


def format_span(delta: timedelta) -> str:
    """Coarser form for the runner's notices (a wait, a late send, a grace window): ``45 s``,
    ``12 min``, ``3.5 h``. One unit, so that a countdown line reads at a glance."""
    seconds = max(0, round(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"
