"""The probe plan: which brand is asked which question, on which channel, and when.

The plan is a pure function of the study file: the same file (and so the same ``schedule.seed``)
gives the same plan on any machine, because a study must be repeatable and a crashed run must
resume the very plan it started (DESIGN.md, rule 5). Nothing here depends on dict or set order
or on hash randomisation: channels follow the fixed order of ``mystery.words.CHANNELS``, brands
and questions the file's order, and each brand draws from its own ``random.Random`` seeded with
a string (hashed with SHA-512 by ``random``, so stable across runs, versions and platforms).
A brand's send times depend only on the seed, its name, the schedule and its number of probes,
so adding a brand to a study does not move anyone else's probes.

Three decisions shape a plan, each chosen so the numbers compare fairly.

**Send times: spread over the schedule and over the day.** A brand answering slowly at 09:00
every time would otherwise look like a slow brand. Everything is measured in *open time*: the
send windows on each local date from ``start`` to ``end``, laid end to end
(:func:`mystery.hours.open_intervals`, so 09:00 local stays 09:00 local across a DST change).
Each of a brand's ``k`` probes (``probes_per_brand`` × its channels) is given its own ``1/k``
share of the day's open time (shares shuffled per brand: Latin-hypercube style), which it takes
wherever it can, so a brand's probes fall at different times of day. Then:

- *Roomy schedules* (the usual case): the probes go one into each of ``k`` equal arcs laid round
  the open time from a random phase, with a guard between arcs equal to the most open time any
  ``min_gap`` of real time can contain. Every gap holds by construction and, thanks to the
  phase, every day and weekday is equally likely.
- *Tight schedules* (arcs shorter than half a day): start from a plan between the earliest and
  the latest plan that fit (greedy from either end), then resample each probe within the room
  its neighbours leave it, a few sweeps each way (Gibbs sampling). Every step keeps every gap.
  Near capacity the constraint itself dictates much (e.g. 1-day gaps on consecutive days force
  later and later times of day).

A schedule that cannot hold ``k`` probes ``min_gap`` apart at all is reported up front as a
:class:`~mystery.errors.StudyError` naming ``schedule``, with how many would fit.

**Questions: counterbalanced as a Latin square.** The ``r``-th probe (in time) of brand ``i`` on
a channel gets question ``(shift + i + c[r]) mod Q``: brand ``i`` starts at offset ``i``, and
``c`` is a permutation while ``r < Q``, so no brand hears a question twice on a channel before
it has heard them all. When the number of brands is not a multiple of ``Q``, ``c`` steps by
``B mod Q`` (and one more per full cycle) and ``shift`` lines the channels' left-overs up end to
end, which keeps every question's count within one of every other's on each channel and overall
(:func:`_question_offsets`).

**Channels.** A brand's probes are dealt to its channels in turn, in time order, from a
per-brand shuffled order, so each channel's probes spread over the schedule too.

**Accounts.** A channel with several ``accounts`` has its probes dealt among them once times
and questions are drawn (:mod:`mystery.study.accounts`): each brand hears from several accounts
and each account asks each question about equally often.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mystery.durations import format_duration
from mystery.errors import Problem, StudyError
from mystery.hours import open_intervals
from mystery.study.accounts import Seat, deal_accounts
from mystery.study.model import Brand, Study
from mystery.words import AUTOMATED_CHANNELS, CHANNELS

__all__ = ["PlannedProbe", "make_plan", "schedule_problems"]


@dataclass(frozen=True)
class PlannedProbe:
    """One probe as planned: who is asked what, where, and when it is due."""

    id: str  # "p0001"..., numbered in (planned_at, brand, channel) order
    brand: str  # Brand.name
    channel: str  # "x", "mastodon", ..., "phone"
    question: str  # Question.id
    text: str  # Question.render(brand) — the channel adds the handle
    planned_at: datetime  # aware UTC, whole seconds
    account: str = ""  # the researcher's account it is sent from (ChannelConfig.account_names)


class _Calendar:
    """The schedule's open time as sorted ``[a, b)`` intervals of POSIX seconds, grouped by
    local date, with the working seconds before each interval (to map "the x-th open second")."""

    def __init__(self, study: Study, holidays: str | None = None) -> None:
        schedule = study.schedule
        zone = study.zone
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.before: list[int] = []  # open seconds before each interval
        self.day_length: list[int] = []  # open seconds of each local date that has any
        self.day_before: list[int] = []  # open seconds before each of those dates
        total = 0
        day = schedule.start
        # No probe is planned on a public holiday: the study's, or a brand's own calendar.
        closed = study.holiday_dates(holidays)
        while day <= schedule.end:
            day_total = 0
            for a, b in ([] if day in closed else open_intervals(day, schedule.windows, zone)):
                lo, hi = math.ceil(a.timestamp()), math.floor(b.timestamp())
                if hi <= lo:
                    continue
                self.starts.append(lo)
                self.ends.append(hi)
                self.before.append(total + day_total)
                day_total += hi - lo
            if day_total:
                self.day_length.append(day_total)
                self.day_before.append(total)
                total += day_total
            day += timedelta(days=1)
        self.total = total
        self.longest_day = max(self.day_length, default=0)

    def at(self, x: int) -> int:
        """The instant of the ``x``-th open second (0-based)."""
        i = bisect_right(self.before, x) - 1
        return self.starts[i] + (x - self.before[i])

    def position(self, t: int) -> int:
        """How many open seconds come before instant ``t``."""
        i = bisect_right(self.starts, t) - 1
        if i < 0:
            return 0
        return self.before[i] + min(t - self.starts[i], self.ends[i] - self.starts[i])

    def day_at(self, x: int) -> int:
        """The index of the date that holds the ``x``-th open second."""
        return bisect_right(self.day_before, x) - 1

    def first_open(self, t: int) -> int | None:
        """The first open second at or after ``t``."""
        i = bisect_right(self.starts, t) - 1
        if i >= 0 and t < self.ends[i]:
            return t
        return self.starts[i + 1] if i + 1 < len(self.starts) else None

    def last_open(self, t: int) -> int | None:
        """The last open second at or before ``t``."""
        i = bisect_right(self.starts, t) - 1
        return None if i < 0 else min(t, self.ends[i] - 1)

    def bounds(self, k: int, gap: int) -> tuple[list[int], list[int]] | None:
        """For each of ``k`` probes ``gap`` apart, its earliest and its latest possible time
        (greedy from the start and from the end, which is optimal on a line); ``None`` when
        ``k`` probes do not fit."""
        if not self.starts:
            return None
        earliest = [self.starts[0]]
        latest = [self.ends[-1] - 1]
        for _ in range(k - 1):
            after = self.first_open(earliest[-1] + gap)
            before = self.last_open(latest[-1] - gap)
            if after is None or before is None:
                return None
            earliest.append(after)
            latest.append(before)
        latest.reverse()
        return earliest, latest

    def guard(self, gap: int) -> int:
        """The most open time any ``gap`` of real time can hold: two probes at least this many
        open seconds apart are always at least ``gap`` apart in real time.

        The worst case starts at an interval's start: sliding later inside an interval adds at
        most as much open time at the far end as it removes at the near one."""
        worst = 0
        for start, before in zip(self.starts, self.before, strict=True):
            worst = max(worst, self.position(start + gap) - before)
        return worst

    def capacity(self, gap: int, limit: int) -> int:
        """How many probes ``gap`` apart fit (greedily, which is optimal), up to ``limit``."""
        count = 0
        t = self.starts[0] if self.starts else None
        while t is not None and count < limit:
            count += 1
            t = self.first_open(t + gap)
        return count


def _question_offsets(
    n_brands: int, n_questions: int, per_brand: int
) -> tuple[list[int], int, int]:
    """The Latin-square steps ``c[r]`` for one channel, and where its left-overs start and how
    many there are.

    With ``m = n_brands mod Q`` and ``g = gcd(m, Q)``, ``c[r] = r*m + r // (Q/g)``. For one
    position ``r`` the brands cover every question ``n_brands // Q`` times plus once more on the
    ``m`` questions from ``c[r]``; stepping ``c`` by ``m`` lays those extras end to end, and each
    full cycle of ``Q/g`` steps covers the questions evenly, then shifts by one to reach the next
    coset, so ``c`` is a permutation for ``r < Q``. What is left over is a single run of
    ``(per_brand mod (Q/g)) * m`` extras starting at ``per_brand // (Q/g)``, returned so the
    caller can line the channels' runs up end to end.
    """
    q = n_questions
    m = n_brands % q
    g = math.gcd(m, q)
    cycle = q // g
    steps = [(r * m + r // cycle) % q for r in range(per_brand)]
    return steps, per_brand // cycle, (per_brand % cycle) * m


def _schedule_problem(study: Study, source: str, k: int, gap: int, calendar: _Calendar) -> Problem:
    schedule = study.schedule
    fits = calendar.capacity(gap, k)
    if fits == 0:
        message = (
            f"the send windows never open between {schedule.start} and {schedule.end} in "
            f"{study.timezone}; widen schedule.windows or the dates"
        )
    else:
        gap_text = format_duration(schedule.min_gap.total_seconds())
        message = (
            f"cannot fit {k} probes per brand (probes_per_brand × channels) at least {gap_text} "
            f"apart into the send windows from {schedule.start} to {schedule.end}: only {fits} "
            "fit; lengthen the schedule, widen schedule.windows, shorten schedule.min_gap or "
            "lower schedule.probes_per_brand"
        )
    return Problem(source, "schedule", message)


def _brand_channels(study: Study, brand: Brand) -> list[str]:
    """The study's channels this brand is asked on: automated ones need its handle there."""
    return [
        c
        for c in CHANNELS
        if c in study.channels and (c not in AUTOMATED_CHANNELS or c in brand.handles)
    ]


DayShare = tuple[float, float]  # a share of a date's open time, e.g. (0.25, 0.5): its 2nd quarter


def _send_times(
    calendar: _Calendar,
    k: int,
    gap: int,
    guard: int,
    bounds: tuple[list[int], list[int]],
    rng: random.Random,
) -> list[int]:
    """``k`` sorted send times for one brand (see the module docstring)."""
    strata = list(range(k))
    rng.shuffle(strata)
    shares = [(s / k, (s + 1) / k) for s in strata]
    width = calendar.total / k
    if width - guard >= calendar.longest_day / 2:
        return _in_guarded_arcs(calendar, width, guard, shares, rng)
    return _resampled(calendar, gap, bounds, shares, rng)


def _pick(
    calendar: _Calendar, ranges: Sequence[tuple[float, float]], share: DayShare, rng: random.Random
) -> float:
    """A uniform open-time position in ``ranges`` that falls in ``share`` of its date's open
    time, or anywhere in ``ranges`` when no part of them does."""
    pieces: list[tuple[float, float]] = []
    for lo, hi in ranges:
        for day in range(calendar.day_at(int(lo)), calendar.day_at(math.ceil(hi) - 1) + 1):
            start, length = calendar.day_before[day], calendar.day_length[day]
            a = max(lo, start + share[0] * length)
            b = min(hi, start + share[1] * length)
            if b > a:
                pieces.append((a, b))
    if not pieces:
        pieces = list(ranges)
    u = rng.random() * sum(b - a for a, b in pieces)
    for a, b in pieces:
        if u < b - a:
            return a + u
        u -= b - a
    return pieces[-1][0]  # pragma: no cover - only by rounding at the very end


def _in_guarded_arcs(
    calendar: _Calendar,
    width: float,
    guard: int,
    shares: Sequence[DayShare],
    rng: random.Random,
) -> list[int]:
    """One probe in each of ``k`` arcs of open time, ``width - guard`` long and ``guard`` apart,
    laid round the schedule as a circle from a random phase.

    ``guard`` open seconds always span at least ``min_gap`` of real time, so probes in different
    arcs can never be too close (positions in different arcs differ by more than ``guard``, and
    still by at least ``guard`` after rounding down to whole seconds); the random phase makes
    every day and weekday equally likely for every brand."""
    total = calendar.total
    phase = rng.random() * total
    positions: list[int] = []
    for j, share in enumerate(shares):
        lo = (phase + j * width) % total
        hi = lo + width - guard
        # An arc that runs past the end of the schedule wraps round to its start.
        ranges = [(lo, hi)] if hi <= total else [(lo, float(total)), (0.0, hi - total)]
        positions.append(min(int(_pick(calendar, ranges, share, rng)), total - 1))
    return sorted(calendar.at(x) for x in positions)


def _resampled(
    calendar: _Calendar,
    gap: int,
    bounds: tuple[list[int], list[int]],
    shares: Sequence[DayShare],
    rng: random.Random,
    sweeps: int = 4,
) -> list[int]:
    """Tight schedules: start from a plan that fits, then resample each probe in turn within the
    room its neighbours leave it (Gibbs sampling, forwards and backwards), preferring its own
    share of the day.

    The start interpolates each probe between its earliest and latest possible time; on its own
    that would give every brand the same days. A few sweeps of resampling spread the days while
    every intermediate plan keeps every gap, so the result always fits."""
    earliest, latest = bounds
    k = len(earliest)
    times: list[int] = []
    for j in range(k):
        lo, hi = calendar.position(earliest[j]), calendar.position(latest[j])
        t = calendar.at(lo + int((j + 0.5) / k * (hi - lo)))
        if times:
            first = calendar.first_open(times[-1] + gap)
            assert first is not None and first <= latest[j]  # guaranteed by `latest`
            t = min(max(t, first), latest[j])
        times.append(t)
    order = list(range(k))
    for sweep in range(sweeps):
        for j in order if sweep % 2 == 0 else reversed(order):
            lo_t = calendar.first_open(times[j - 1] + gap) if j else earliest[0]
            hi_t = calendar.last_open(times[j + 1] - gap) if j + 1 < k else latest[-1]
            assert lo_t is not None and hi_t is not None and lo_t <= hi_t  # the plan fits
            lo, hi = calendar.position(lo_t), calendar.position(hi_t) + 1
            x = _pick(calendar, [(lo, hi)], shares[j], rng)
            times[j] = calendar.at(min(int(x), hi - 1))
    return times


def _gap(study: Study) -> int:
    """``min_gap`` in whole seconds, at least one so that a brand's probes are strictly ordered."""
    return max(1, math.ceil(study.schedule.min_gap.total_seconds()))


def _label(study: Study, source: str | Path | None) -> str:
    return str(source) if source is not None else f"study {study.name}"


def _calendars(study: Study) -> dict[str | None, _Calendar]:
    """One calendar of open time per holiday calendar in use (most studies: one)."""
    return {code: _Calendar(study, code)
            for code in dict.fromkeys(study.calendar_of(b) for b in study.brands)} or {
        study.holidays: _Calendar(study, study.holidays)}


def _fit(study: Study, calendars: dict[str | None, _Calendar], where: str) \
        -> dict[tuple[str | None, int], tuple[list[int], list[int]]]:
    """Earliest and latest times for each holiday calendar and number of probes a brand gets;
    StudyError if the schedule cannot hold them."""
    gap = _gap(study)
    found: dict[tuple[str | None, int], tuple[list[int], list[int]]] = {}
    per_brand = study.schedule.probes_per_brand
    needs = sorted({(study.calendar_of(b) or "", per_brand * len(_brand_channels(study, b)))
                    for b in study.brands})
    for code, k in needs:
        if k == 0:
            continue
        calendar = calendars[code or None]
        bounds = calendar.bounds(k, gap)
        if bounds is None:
            raise StudyError([_schedule_problem(study, where, k, gap, calendar)])
        found[(code or None, k)] = bounds
    return found


def schedule_problems(study: Study, source: str | Path | None = None) -> list[Problem]:
    """Why the schedule cannot hold every brand's probes (empty when it can), without drawing a
    plan: ``load_study`` asks this so that ``mystery validate`` catches what ``plan`` would."""
    try:
        _fit(study, _calendars(study), _label(study, source))
    except StudyError as error:
        return error.problems
    return []


def make_plan(study: Study, *, source: str | Path | None = None) -> list[PlannedProbe]:
    """Plan every probe of the study, sorted by ``planned_at`` then ``id``.

    ``source`` (the study file's path) only labels errors. Raises :class:`StudyError` when the
    schedule cannot hold the probes."""
    schedule = study.schedule
    calendars = _calendars(study)
    gap = _gap(study)
    guards = {code: calendar.guard(gap) for code, calendar in calendars.items()}
    per_brand = schedule.probes_per_brand
    channels_of = [_brand_channels(study, brand) for brand in study.brands]
    bounds = _fit(study, calendars, _label(study, source))

    # Question steps per channel, with shifts that line up the channels' left-overs.
    q = len(study.questions)
    steps: dict[str, list[int]] = {}
    shift: dict[str, int] = {}
    index_on: dict[tuple[int, str], int] = {}
    run_end = 0
    for channel in CHANNELS:
        asked = [b for b, cs in enumerate(channels_of) if channel in cs]
        if not asked:
            continue
        for i, b in enumerate(asked):
            index_on[(b, channel)] = i
        steps[channel], run_start, run_length = _question_offsets(len(asked), q, per_brand)
        shift[channel] = (run_end - run_start) % q if run_length else run_end % q
        run_end += run_length

    drafts: list[tuple[int, str, str, str, str, int]] = []
    seats: dict[str, list[Seat]] = {}
    for b, brand in enumerate(study.brands):
        channels = channels_of[b]
        if not channels:
            continue
        k = per_brand * len(channels)
        rng = random.Random(f"mystery-plan\x00{schedule.seed}\x00{brand.name}")
        order = list(channels)
        rng.shuffle(order)
        seen: dict[str, int] = {}
        code = study.calendar_of(brand)
        times = _send_times(calendars[code], k, gap, guards[code], bounds[(code, k)], rng)
        for j, t in enumerate(times):
            channel = order[j % len(order)]
            r = seen[channel] = seen.get(channel, -1) + 1
            question = study.questions[
                (shift[channel] + index_on[(b, channel)] + steps[channel][r]) % q
            ]
            on = seats.setdefault(channel, [])
            drafts.append((t, brand.name, channel, question.id, question.render(brand.name),
                           len(on)))
            on.append(Seat(index_on[(b, channel)], r, question.id))
    accounts = {channel: deal_accounts(on, study.channels[channel].account_names)
                for channel, on in seats.items()}

    drafts.sort(key=lambda d: (d[0], d[1], d[2]))
    width = max(4, len(str(len(drafts))))
    return [
        PlannedProbe(
            id=f"p{n:0{width}d}",
            brand=name,
            channel=channel,
            question=question_id,
            text=text,
            planned_at=datetime.fromtimestamp(t, UTC),
            account=accounts[channel][seat],
        )
        for n, (t, name, channel, question_id, text, seat) in enumerate(drafts, start=1)
    ]
