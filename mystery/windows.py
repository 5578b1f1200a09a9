"""Weekly local-time windows as a study file writes them: send windows and opening hours.

Days as ``"mon-fri"``, ``"sat,sun"`` or ``"daily"``; times as ``HH:MM`` in the study's time zone,
with ``24:00`` kept as ``23:59:59`` (``datetime.time`` cannot hold it; :mod:`mystery.hours`
reads it as "until midnight"); and the one-line form of opening hours that the brands CSV's
``hours`` column uses. The arithmetic over windows is :mod:`mystery.hours`. ``mystery.study``
re-exports :class:`Window`, :func:`parse_hours` and :func:`format_hours`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import time
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_days(spec: str) -> frozenset[int]:
    """``"mon-fri"``, ``"sat,sun"``, ``"daily"`` → weekday numbers (Monday = 0)."""
    spec = spec.strip().lower()
    if spec in ("daily", "all", "every day"):
        return frozenset(range(7))
    days: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        ends = [p.strip()[:3] for p in part.split("-")]
        if len(ends) > 2 or any(e not in _DAY_NAMES for e in ends):
            raise ValueError(
                f"cannot read days {spec!r}; write e.g. 'mon-fri', 'sat,sun' or 'daily'"
            )
        first = _DAY_NAMES.index(ends[0])
        last = _DAY_NAMES.index(ends[-1])
        day = first
        while True:
            days.add(day)
            if day == last:
                break
            day = (day + 1) % 7
    return frozenset(days)


class Window(BaseModel):
    """A recurring local-time interval, e.g. weekdays 09:00–17:00 in the study timezone."""

    model_config = ConfigDict(extra="forbid", frozen=True)  # as every model of the study file

    days: str = "mon-fri"
    start: time
    end: time

    @field_validator("days")
    @classmethod
    def _days(cls, value: str) -> str:
        parse_days(value)
        return value

    @field_validator("start", "end", mode="before")
    @classmethod
    def _clock_time(cls, value: Any) -> Any:
        if isinstance(value, str) and re.fullmatch(r"\d{1,2}:\d{2}", value.strip()):
            hours, minutes = value.strip().split(":")
            if int(hours) == 24 and int(minutes) == 0:
                return time(23, 59, 59)
            return time(int(hours), int(minutes))
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.end <= self.start:
            raise ValueError(
                f"window ends ({self.end:%H:%M}) before it starts ({self.start:%H:%M}); "
                "windows cannot cross midnight, split it into two"
            )
        return self

    @property
    def weekdays(self) -> frozenset[int]:
        return parse_days(self.days)


HOURS_EXAMPLE = "mon-fri 09:00-17:00; sat 10:00-16:00"
_HOURS_ENTRY = re.compile(
    r"(?P<days>.*?)\s*:?\s*(?P<start>\d{1,2}:\d{2})\s*[-–]\s*(?P<end>\d{1,2}:\d{2})")


def parse_hours(spec: str) -> list[Window]:
    """Opening hours written on one line, as in the brands CSV's ``hours`` column and in
    ``study.json``: entries separated by ``;``, each days then ``start-end`` in local time
    (``HOURS_EXAMPLE``). Empty means none declared. ValueError names the entry and the fix."""
    windows: list[Window] = []
    for entry in filter(None, (part.strip() for part in spec.split(";"))):
        match = _HOURS_ENTRY.fullmatch(entry)
        if match is None or not match["days"]:
            raise ValueError(f"cannot read {entry!r}; write days then opening times, separated "
                             f"by ';', e.g. '{HOURS_EXAMPLE}'")
        for clock in (match["start"], match["end"]):
            hour, minute = map(int, clock.split(":"))
            if minute > 59 or hour > 24 or (hour == 24 and minute):
                raise ValueError(f"{entry!r}: {clock} is not a time of day; write HH:MM from "
                                 "00:00 to 24:00")
        try:
            windows.append(Window.model_validate(match.groupdict()))
        except ValidationError as exc:
            raise ValueError(f"{entry!r}: " + str(exc.errors()[0]["msg"]).removeprefix(
                "Value error, ")) from None
    return windows


def format_hours(windows: Sequence[Window]) -> str:
    """The one-line form :func:`parse_hours` reads back (``24:00`` for an end at midnight)."""
    def clock(t: time) -> str:
        return "24:00" if t == time(23, 59, 59) else f"{t:%H:%M}"

    return "; ".join(f"{w.days} {clock(w.start)}-{clock(w.end)}" for w in windows)
