"""Business time: exact cases worked out by hand, and properties checked against a brute-force
oracle that applies the module's one definition (an instant is open when its local wall clock
reads inside a window on a non-holiday date) minute by minute."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mystery.hours import (
    Window,
    add_business_time,
    business_seconds,
    is_open,
    next_open,
    open_intervals,
)

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
HOUR = 3600.0


def window(days: str, start: str, end: str) -> Window:
    return Window.model_validate({"days": days, "start": start, "end": end})


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


OFFICE = [window("mon-fri", "09:00", "17:00")]
DAILY_9_17 = [window("daily", "09:00", "17:00")]


# --- exact cases -------------------------------------------------------------------------------


def test_a_weekend_is_closed_and_skipped() -> None:
    friday_1630 = utc(2026, 1, 16, 16, 30)  # GMT = UTC in January
    assert add_business_time(friday_1630, timedelta(hours=1), OFFICE, LONDON) == utc(
        2026, 1, 19, 9, 30
    )
    assert business_seconds(friday_1630, utc(2026, 1, 19, 9, 30), OFFICE, LONDON) == HOUR
    assert business_seconds(utc(2026, 1, 17, 12), utc(2026, 1, 18, 12), OFFICE, LONDON) == 0
    assert not is_open(utc(2026, 1, 17, 12), OFFICE, LONDON)
    assert next_open(utc(2026, 1, 17, 12), OFFICE, LONDON) == utc(2026, 1, 19, 9)


def test_local_windows_move_in_utc_across_a_dst_change_but_keep_their_length() -> None:
    # London springs forward on Sunday 2026-03-29: 09:00 local is 09:00 UTC before, 08:00 after.
    assert open_intervals(date(2026, 3, 28), DAILY_9_17, LONDON) == (
        (utc(2026, 3, 28, 9), utc(2026, 3, 28, 17)),
    )
    assert open_intervals(date(2026, 3, 29), DAILY_9_17, LONDON) == (
        (utc(2026, 3, 29, 8), utc(2026, 3, 29, 16)),
    )
    week = business_seconds(utc(2026, 3, 26), utc(2026, 4, 2), DAILY_9_17, LONDON)
    assert week == 7 * 8 * HOUR


def test_delay_across_a_weekend_and_the_spring_change() -> None:
    # Friday 27 March 16:00 GMT; one hour left that day, then Monday 30 March opens at 08:00 UTC.
    start = utc(2026, 3, 27, 16)
    end = add_business_time(start, timedelta(hours=2), OFFICE, LONDON)
    assert end == utc(2026, 3, 30, 9)
    assert business_seconds(start, end, OFFICE, LONDON) == 2 * HOUR


def test_new_york_spring_forward() -> None:
    # 2026-03-08: EST (UTC-5) becomes EDT (UTC-4). Saturday 16:00 EST is 21:00 UTC.
    start = utc(2026, 3, 7, 21)
    assert add_business_time(start, timedelta(hours=2), DAILY_9_17, NEW_YORK) == utc(2026, 3, 8, 14)


def test_a_window_inside_the_spring_gap_opens_when_the_clock_jumps() -> None:
    # 01:00–02:00 local does not exist on 2026-03-29; 01:30–03:00 opens at 02:00 BST = 01:00 UTC.
    night = [window("daily", "01:30", "03:00")]
    assert open_intervals(date(2026, 3, 29), night, LONDON) == (
        (utc(2026, 3, 29, 1), utc(2026, 3, 29, 2)),
    )
    midnight_to_three = [window("daily", "00:00", "03:00")]
    assert (
        business_seconds(utc(2026, 3, 28, 12), utc(2026, 3, 29, 12), midnight_to_three, LONDON)
        == 2 * HOUR
    )


def test_a_repeated_hour_in_the_autumn_is_open_both_times() -> None:
    # 01:00–02:00 local happens twice on 2026-10-25 (BST, then GMT).
    midnight_to_three = [window("daily", "00:00", "03:00")]
    assert open_intervals(date(2026, 10, 25), midnight_to_three, LONDON) == (
        (utc(2026, 10, 24, 23), utc(2026, 10, 25, 3)),
    )
    half_past_one = [window("daily", "01:30", "01:45")]
    assert open_intervals(date(2026, 10, 25), half_past_one, LONDON) == (
        (utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 0, 45)),
        (utc(2026, 10, 25, 1, 30), utc(2026, 10, 25, 1, 45)),
    )
    assert add_business_time(
        utc(2026, 10, 25, 0, 40), timedelta(minutes=10), half_past_one, LONDON
    ) == utc(2026, 10, 25, 1, 35)


def test_overlapping_windows_count_once_and_24_00_means_midnight() -> None:
    overlapping = [window("mon-fri", "09:00", "13:00"), window("mon", "12:00", "17:00")]
    monday = utc(2026, 1, 19)
    assert business_seconds(monday, monday + timedelta(days=1), overlapping, LONDON) == 8 * HOUR
    all_day = [window("daily", "00:00", "24:00")]
    assert business_seconds(monday, monday + timedelta(days=3), all_day, LONDON) == 3 * 86_400
    assert open_intervals(date(2026, 1, 19), all_day, LONDON) == ((monday, monday + timedelta(1)),)


def test_holidays_are_closed_all_day() -> None:
    christmas = date(2026, 12, 25)  # a Friday
    start = utc(2026, 12, 24, 16)
    assert add_business_time(start, timedelta(hours=2), OFFICE, LONDON, {christmas}) == utc(
        2026, 12, 28, 10
    )
    assert business_seconds(start, utc(2026, 12, 28), OFFICE, LONDON, [christmas]) == HOUR
    assert not is_open(utc(2026, 12, 25, 12), OFFICE, LONDON, {christmas})


def test_a_holidays_calendar_is_consulted_lazily() -> None:
    # The `holidays` package fills in a year only when asked about one of its dates; copying the
    # calendar into a set up front would silently forget every holiday.
    import holidays

    england = holidays.country_holidays("GB", subdiv="ENG")
    start = utc(2026, 12, 24, 16)  # Thursday; Friday 25 and Monday 28 December are holidays
    assert add_business_time(start, timedelta(hours=2), OFFICE, LONDON, england) == utc(
        2026, 12, 29, 10
    )
    assert not is_open(utc(2026, 12, 28, 12), OFFICE, LONDON, england)


def test_no_windows_means_always_open() -> None:
    start = utc(2026, 1, 17, 3)
    assert add_business_time(start, timedelta(hours=5), [], LONDON) == start + timedelta(hours=5)
    assert business_seconds(start, start + timedelta(hours=5), [], LONDON) == 5 * HOUR
    assert is_open(start, [], LONDON)


def test_zero_delay_is_the_start_itself_even_when_closed() -> None:
    saturday = utc(2026, 1, 17, 12)
    assert add_business_time(saturday, timedelta(0), OFFICE, LONDON) == saturday


def test_long_gaps_are_cheap() -> None:
    start = utc(2026, 1, 1)
    year = business_seconds(start, utc(2027, 1, 1), OFFICE, LONDON)
    assert year == 261 * 8 * HOUR  # 2026 has 261 weekdays
    assert add_business_time(start, timedelta(seconds=year), OFFICE, LONDON) == utc(
        2026, 12, 31, 17
    )


def test_naive_times_and_negative_delays_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        business_seconds(datetime(2026, 1, 1), utc(2026, 1, 2), OFFICE, LONDON)
    with pytest.raises(ValueError, match="negative"):
        add_business_time(utc(2026, 1, 1), timedelta(hours=-1), OFFICE, LONDON)


def test_results_are_utc_whatever_the_input_zone() -> None:
    start = datetime(2026, 1, 16, 16, 30, tzinfo=LONDON)
    result = add_business_time(start, timedelta(hours=1), OFFICE, LONDON)
    assert result.utcoffset() == timedelta(0)
    assert result == utc(2026, 1, 19, 9, 30)


# --- properties --------------------------------------------------------------------------------

ZONES = [
    "Europe/London",
    "America/New_York",
    "America/Havana",  # changes at local midnight: 00:00 does not exist on its spring day
    "Australia/Lord_Howe",  # a 30-minute DST change
    "Asia/Kolkata",
    "UTC",
]
# DST days in 2026 for the zones above, and one ordinary day.
ANCHORS = [
    datetime(2026, 3, 8, tzinfo=UTC),
    datetime(2026, 3, 29, tzinfo=UTC),
    datetime(2026, 4, 5, tzinfo=UTC),
    datetime(2026, 10, 4, tzinfo=UTC),
    datetime(2026, 10, 25, tzinfo=UTC),
    datetime(2026, 11, 1, tzinfo=UTC),
    datetime(2026, 6, 17, tzinfo=UTC),
]
DAYS = ["mon-fri", "sat,sun", "daily", "mon", "fri-mon", "wed,sun"]


@st.composite
def windows_strategy(draw: st.DrawFn) -> list[Window]:
    count = draw(st.integers(1, 3))
    result = []
    for _ in range(count):
        start = draw(st.integers(0, 24 * 60 - 1))
        end = draw(st.integers(start + 1, 24 * 60))
        result.append(
            window(
                draw(st.sampled_from(DAYS)),
                f"{start // 60:02d}:{start % 60:02d}",
                f"{end // 60:02d}:{end % 60:02d}",
            )
        )
    return result


zones = st.sampled_from(ZONES).map(ZoneInfo)
# Whole minutes within three days of a DST change, so the brute-force oracle is exact.
instants = st.builds(
    lambda anchor, minutes: anchor + timedelta(minutes=minutes),
    st.sampled_from(ANCHORS),
    st.integers(-3 * 1440, 3 * 1440),
)
delays = st.integers(0, 40 * 3600).map(lambda s: timedelta(seconds=s))
holiday_sets = st.lists(
    st.sampled_from([a.date() + timedelta(days=d) for a in ANCHORS for d in (-1, 0, 1)]),
    max_size=3,
)


def oracle_open(instant: datetime, windows: list[Window], tz: ZoneInfo) -> bool:
    wall = instant.astimezone(tz)
    clock = wall.time()
    return any(
        wall.weekday() in w.weekdays
        and w.start <= clock
        and (clock < w.end or w.end == time(23, 59, 59))  # "24:00"
        for w in windows
    )


@settings(max_examples=40, deadline=None)
@given(windows_strategy(), zones, instants, st.integers(0, 2 * 1440))
def test_matches_the_definition_minute_by_minute(
    windows: list[Window], tz: ZoneInfo, start: datetime, minutes: int
) -> None:
    end = start + timedelta(minutes=minutes)
    expected = sum(
        60 for m in range(minutes) if oracle_open(start + timedelta(minutes=m), windows, tz)
    )
    assert business_seconds(start, end, windows, tz) == expected


@settings(max_examples=100, deadline=None)
@given(windows_strategy(), zones, instants, instants, instants, holiday_sets)
def test_never_negative_and_additive_over_any_split(
    windows: list[Window],
    tz: ZoneInfo,
    a: datetime,
    b: datetime,
    c: datetime,
    holidays: list[date],
) -> None:
    start, middle, end = sorted([a, b, c])
    whole = business_seconds(start, end, windows, tz, holidays)
    assert whole >= 0
    assert business_seconds(end, start, windows, tz, holidays) == 0
    assert whole == business_seconds(start, middle, windows, tz, holidays) + business_seconds(
        middle, end, windows, tz, holidays
    )
    assert whole <= (end - start).total_seconds()


@settings(max_examples=100, deadline=None)
@given(windows_strategy(), zones, instants, delays, holiday_sets)
def test_adding_then_measuring_gives_the_delay_back(
    windows: list[Window], tz: ZoneInfo, start: datetime, delay: timedelta, holidays: list[date]
) -> None:
    end = add_business_time(start, delay, windows, tz, holidays)
    assert end >= start
    assert business_seconds(start, end, windows, tz, holidays) == delay.total_seconds()
    if delay:
        # Earliest such instant: the last second before it was open time that counted.
        assert is_open(end - timedelta(seconds=1), windows, tz, holidays)
        assert business_seconds(start, end - timedelta(seconds=1), windows, tz, holidays) == (
            delay.total_seconds() - 1
        )


@settings(max_examples=100, deadline=None)
@given(windows_strategy(), zones, instants, holiday_sets)
def test_zero_while_closed_then_open_at_next_open(
    windows: list[Window], tz: ZoneInfo, start: datetime, holidays: list[date]
) -> None:
    opens = next_open(start, windows, tz, holidays)
    assert business_seconds(start, opens, windows, tz, holidays) == 0
    assert is_open(opens, windows, tz, holidays)
    assert is_open(start, windows, tz, holidays) == (opens == start)
    assert add_business_time(start, timedelta(seconds=1), windows, tz, holidays) == (
        opens + timedelta(seconds=1)
    )


@settings(max_examples=80, deadline=None)
@given(windows_strategy(), zones, instants)
def test_is_open_agrees_with_the_definition(
    windows: list[Window], tz: ZoneInfo, instant: datetime
) -> None:
    assert is_open(instant, windows, tz) == oracle_open(instant, windows, tz)
