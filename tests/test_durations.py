from __future__ import annotations

from datetime import timedelta

import pytest

from mystery.durations import (
    format_duration,
    minutes_cell,
    parse_duration,
    parse_published_minutes,
    rate_cell,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", timedelta(days=7)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("90s", timedelta(seconds=90)),
        ("2w", timedelta(weeks=2)),
        ("45 min", timedelta(minutes=45)),
    ],
)
def test_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "7", "seven days", "7x", "1h 30"])
def test_parse_refuses_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(ValueError, match="7d"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "—"),
        (42, "42 s"),
        (9 * 60, "9 min"),
        (9 * 3600 + 3 * 60, "9 h 03 min"),
        (2 * 86400 + 4 * 3600, "2 d 4 h"),
        (7 * 86400, "7 d"),
        (28 * 3600 + 53 * 60, "1 d 4 h 53 min"),  # never "1 d 4 h": minutes past a day stay
        (90, "1 min 30 s"),  # 90 s and 150 s no longer both print "2 min"
        (150, "2 min 30 s"),
        (158, "2 min 38 s"),
        (59 * 60 + 40, "59 min 40 s"),
        (59 * 60 + 59.6, "1 h 00 min"),
        (-52272, "-14 h 31 min"),
    ],
)
def test_format_like_published_surveys(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("9", 540.0),
        ("2.633333", 157.99998),
        ("2:38", 158.0),
        ("2:38.250", 158.25),
        ("9:03:00", 9 * 3600 + 180.0),
        ("1 h 05 min", 3900.0),
        ("2 min 38 s", 158.0),
        ("9 hours 3 minutes", 32580.0),
        ("1 day 4 hours 53 minutes", 103980.0),
    ],
)
def test_published_times_read_as_surveys_print_them(text: str, seconds: float) -> None:
    assert parse_published_minutes(text) == pytest.approx(seconds, abs=1e-9)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("≥ 90", "bound"), ("< 1 min", "bound"), ("over 24 h", "bound"), ("24 h+", "bound"),
        ("2:61", "stop at 59"), ("three minutes", "2:38"), ("9 furlongs", "2:38"),
        ("-4", "zero or more"), ("", "empty"),
    ],
)
def test_published_times_refuse_what_is_not_a_figure(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_published_minutes(text)


def test_csv_cells_keep_the_precision_they_were_given() -> None:
    assert minutes_cell(158.0) == "2.633333"  # 2 min 38 s, not 2.6
    assert float(minutes_cell(158.001)) * 60 == pytest.approx(158.001, abs=5e-5)
    assert rate_cell(0.98) == "0.98"  # as published
    assert rate_cell(0.667) == "0.667"
    assert rate_cell(14 / 15) == "0.933333"
    assert rate_cell(1.0) == "1.0"
