"""Business time: arithmetic over weekly local-time windows (opening hours) in an IANA time zone.

Used to ask "when has a brand had eight working hours to answer?" (the sandbox's simulated
brands, the runner's cutoffs in working time) and "how much working time did this reply take?"
(analysis), and by the plan to know when probes may be sent.

Why hand-written: no maintained library fits (DESIGN.md, library table). The business-hours
packages on PyPI are unmaintained, work on naive datetimes, or ignore DST; ``holidays`` supplies
the closed dates (pass a ``holidays.country_holidays(...)`` calendar as ``holidays``) but no
arithmetic. The rules here are small enough to state and property-test.

The one definition everything follows: **an instant is open when its local wall-clock reading
(local date and local time, in ``tz``) falls inside a window for that weekday, and the local date
is not a holiday.** Windows are half-open, ``[start, end)``. Consequences on DST days, chosen
deliberately because they fall out of that definition rather than out of a special case:

- A window bound that does not exist (spring forward, e.g. 01:30 in Europe/London on
  2026-03-29) takes effect at the instant the clock jumps past it: a window 01:30–03:00 that day
  opens at 02:00 BST (01:00 UTC) and is open for one hour.
- A local time that happens twice (fall back, e.g. 01:00–02:00 in Europe/London on 2026-10-25)
  is open both times: a window 00:00–03:00 that day is open for four hours.
- Windows written in local time stay in local time: 09:00–17:00 is eight hours on every day,
  DST or not, and moves by an hour in UTC across a change.

A window ending at ``23:59:59`` is how the study model stores ``"24:00"`` (``datetime.time``
cannot), so it is read as "until midnight"; back-to-back days then join without a one-second gap.

Windows are written as a study file writes them (:class:`Window`: days as ``"mon-fri"``,
``"sat,sun"`` or ``"daily"``, times as ``HH:MM`` in the study's time zone) or on one line, as the
brands CSV's ``hours`` column does (:func:`parse_hours`, :func:`format_hours`); they live here,
with the arithmetic over them, so that the study model and the plan both build on this module
and it on neither.

An empty window list means no hours were declared: always open, and holidays do not apply.

Work is done per local day (a few ``utcoffset`` look-ups and a cached list of UTC intervals), so
a gap of a year costs a few hundred steps, never one per minute.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

__all__ = [
    "HOLIDAYS_EXAMPLE",
    "HOURS_EXAMPLE",
    "Window",
    "add_business_time",
    "business_seconds",
    "format_hours",
    "holiday_dates",
    "is_open",
    "next_open",
    "open_intervals",
    "parse_days",
    "parse_hours",
]

_DAY = 86_400
_END_OF_DAY = time(23, 59, 59)
# Every offset tzdata has ever used lies within ±26 h, so all instants whose local date is D lie
# within [D 00:00 - 26 h, D 24:00 + 26 h) read as UTC.
_MARGIN = timedelta(hours=26)
# Offsets are sampled this far apart to find the transitions inside that span: at most one
# transition is assumed between two samples (tzdata has no two changes within six hours).
_SAMPLE = timedelta(hours=6)

Interval = tuple[datetime, datetime]
_WeekSpec = tuple[tuple[tuple[int, int], ...], ...]


# -- windows as a study file writes them ----------------------------------------------------

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


# -- arithmetic over windows ----------------------------------------------------------------


def _require_aware(dt: datetime, name: str) -> datetime:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{name} is a naive datetime {dt!r}; use an aware (UTC) time")
    return dt.astimezone(UTC)


def _closed(holidays: Collection[date]) -> Collection[date]:
    """Holidays ready for many ``in`` tests. Sets and mappings are used as they are: a
    ``holidays.country_holidays(...)`` calendar fills in each year when first asked about a date
    in it, so copying it into a set would copy only the years it has seen (often none)."""
    if isinstance(holidays, AbstractSet | Mapping):
        return holidays
    return frozenset(holidays)


def _seconds(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


@lru_cache(maxsize=256)
def _week(windows: tuple[Window, ...]) -> _WeekSpec:
    """Per weekday (Monday = 0), the day's windows as merged ``(start, end)`` seconds since local
    midnight, so overlapping windows are never counted twice."""
    week: list[tuple[tuple[int, int], ...]] = []
    for weekday in range(7):
        spans = sorted(
            (_seconds(w.start), _DAY if w.end == _END_OF_DAY else _seconds(w.end))
            for w in windows
            if weekday in w.weekdays
        )
        merged: list[tuple[int, int]] = []
        for lo, hi in spans:
            if merged and lo <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
            elif hi > lo:
                merged.append((lo, hi))
        week.append(tuple(merged))
    return tuple(week)


def _offset(instant: datetime, tz: ZoneInfo) -> timedelta:
    offset = instant.astimezone(tz).utcoffset()
    assert offset is not None  # a ZoneInfo always has one
    return offset


def _transition(lo: datetime, hi: datetime, tz: ZoneInfo) -> datetime:
    """The first whole second in ``(lo, hi]`` with ``hi``'s offset, ``lo`` having another one.

    Bisection, because zoneinfo does not expose its transition table; tzdata transitions fall on
    whole seconds, so 17 or so look-ups find one exactly."""
    target = _offset(hi, tz)
    while (hi - lo) > timedelta(seconds=1):
        mid = lo + timedelta(seconds=(hi - lo) // timedelta(seconds=1) // 2)
        if _offset(mid, tz) == target:
            hi = mid
        else:
            lo = mid
    return hi


def _segments(
    lo: datetime, hi: datetime, tz: ZoneInfo
) -> list[tuple[datetime, datetime, timedelta]]:
    """Split ``[lo, hi)`` (UTC) into spans of constant UTC offset."""
    samples = [lo]
    while samples[-1] + _SAMPLE < hi:
        samples.append(samples[-1] + _SAMPLE)
    samples.append(hi)
    segments: list[tuple[datetime, datetime, timedelta]] = []
    start, offset = lo, _offset(lo, tz)
    for prev, cur in itertools.pairwise(samples):
        if _offset(cur, tz) != offset:
            change = _transition(prev, cur, tz)
            segments.append((start, change, offset))
            start, offset = change, _offset(change, tz)
    segments.append((start, hi, offset))
    return segments


@lru_cache(maxsize=16_384)
def _day_intervals(
    day: date, spans: tuple[tuple[int, int], ...], tz: ZoneInfo
) -> tuple[Interval, ...]:
    """The UTC intervals in which the local wall clock of ``day`` reads inside ``spans``."""
    if not spans:
        return ()
    midnight = datetime.combine(day, time(), UTC)  # local midnight, read as if it were UTC
    pieces: list[Interval] = []
    for seg_lo, seg_hi, offset in _segments(
        midnight - _MARGIN, midnight + timedelta(days=1) + _MARGIN, tz
    ):
        for lo, hi in spans:
            a = max(midnight + timedelta(seconds=lo) - offset, seg_lo)
            b = min(midnight + timedelta(seconds=hi) - offset, seg_hi)
            if a < b:
                pieces.append((a, b))
    pieces.sort()
    merged: list[Interval] = []
    for a, b in pieces:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return tuple(merged)


def open_intervals(day: date, windows: Sequence[Window], tz: ZoneInfo) -> tuple[Interval, ...]:
    """The UTC ``[start, end)`` intervals, in order, during which local date ``day`` is open.

    Usually one per window; a DST change can split or shorten them (see the module docstring).
    With no windows the whole local day is open."""
    if not windows:
        spans: tuple[tuple[int, int], ...] = ((0, _DAY),)
    else:
        spans = _week(tuple(windows))[day.weekday()]
    return _day_intervals(day, spans, tz)


def _intervals_from(
    start: datetime, windows: Sequence[Window], tz: ZoneInfo, holidays: Collection[date]
) -> Iterator[Interval]:
    """Open intervals clipped to ``[start, ∞)``, in time order, one local day at a time.

    Never ends, and never stalls: holidays are finite and some weekday has a window, so an open
    interval always comes."""
    week = _week(tuple(windows))
    if not any(week):
        raise ValueError("the windows are never open; give at least one window")
    # Start a day early: after a fall-back at midnight an instant can read as the previous date.
    day = start.astimezone(tz).date() - timedelta(days=1)
    while True:
        if day not in holidays:
            for a, b in _day_intervals(day, week[day.weekday()], tz):
                if b > start:
                    yield max(a, start), b
        day += timedelta(days=1)


def add_business_time(
    start: datetime,
    delay: timedelta,
    windows: Sequence[Window],
    tz: ZoneInfo,
    holidays: Collection[date] = (),
) -> datetime:
    """The earliest instant (aware UTC) by which ``delay`` of open time has passed since ``start``.

    ``delay`` zero returns ``start`` itself, open or not; use :func:`next_open` for "when does it
    open". The result is exact to the microsecond, so ``business_seconds(start, result) ==
    delay.total_seconds()``."""
    start = _require_aware(start, "start")
    if delay < timedelta(0):
        raise ValueError(f"delay {delay} is negative")
    if not windows:
        return start + delay
    if delay == timedelta(0):
        return start
    remaining = delay
    for a, b in _intervals_from(start, windows, tz, _closed(holidays)):
        if remaining <= b - a:
            return a + remaining
        remaining -= b - a
    raise AssertionError("unreachable: _intervals_from never ends")  # pragma: no cover


def business_seconds(
    start: datetime,
    end: datetime,
    windows: Sequence[Window],
    tz: ZoneInfo,
    holidays: Collection[date] = (),
) -> float:
    """Open seconds in ``[start, end)``; 0 when ``end <= start``.

    Holidays' local dates are closed all day."""
    start = _require_aware(start, "start")
    end = _require_aware(end, "end")
    if end <= start:
        return 0.0
    if not windows:
        return (end - start).total_seconds()
    total = timedelta(0)
    for a, b in _intervals_from(start, windows, tz, _closed(holidays)):
        if a >= end:
            break
        total += min(b, end) - a
    return total.total_seconds()


def is_open(
    instant: datetime, windows: Sequence[Window], tz: ZoneInfo, holidays: Collection[date] = ()
) -> bool:
    """Whether ``instant`` falls in a window (on a non-holiday local date)."""
    instant = _require_aware(instant, "instant")
    if not windows:
        return True
    local_day = instant.astimezone(tz).date()
    if local_day in _closed(holidays):
        return False
    return any(a <= instant < b for a, b in open_intervals(local_day, windows, tz))


def next_open(
    instant: datetime, windows: Sequence[Window], tz: ZoneInfo, holidays: Collection[date] = ()
) -> datetime:
    """``instant`` if open, else the next instant (aware UTC) at which a window opens."""
    instant = _require_aware(instant, "instant")
    if not windows:
        return instant
    return next(_intervals_from(instant, windows, tz, _closed(holidays)))[0]


HOLIDAYS_EXAMPLE = "GB-ENG"


def holiday_dates(code: str, first: int, last: int) -> frozenset[date]:
    """The public holidays of ``code`` (a country, ``GB``, or a country and subdivision,
    ``GB-ENG``, as the ``holidays`` package names them) in the years ``first`` to ``last``.
    ValueError names the valid form when the package knows no such calendar."""
    import holidays as calendars

    country, _, subdivision = code.partition("-")
    known = calendars.list_supported_countries()
    if country not in known:
        raise ValueError(f"unknown country {country!r}; write an ISO 3166 code such as "
                         f"'{HOLIDAYS_EXAMPLE}' or 'DE-BY'")
    if subdivision and subdivision not in known[country]:
        some = ", ".join(f"{country}-{s}" for s in sorted(known[country])[:6])
        raise ValueError(f"{country!r} has no subdivision {subdivision!r}; use one of {some}"
                         f"{', …' if len(known[country]) > 6 else ''}")
    return frozenset(calendars.country_holidays(country, subdiv=subdivision or None,
                                                years=range(first, last + 1)))
