from __future__ import annotations

from datetime import timedelta

import pytest

from mystery.durations import format_duration, parse_duration


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
        (59 * 60 + 40, "1 h 00 min"),
        (-52272, "-14 h 31 min"),
    ],
)
def test_format_like_published_surveys(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text
