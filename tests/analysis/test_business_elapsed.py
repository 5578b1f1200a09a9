"""Business-hours elapsed time and send windows, in the study's time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from mystery.analysis import business, timings
from mystery.hours import business_seconds

LONDON = "Europe/London"


def _series(*times: datetime) -> pl.Series:
    return pl.Series("sent_at", list(times), dtype=pl.Datetime("ms", "UTC"))


def test_across_a_weekend_and_the_spring_dst_change() -> None:
    # Friday 2025-03-28 16:00 GMT; British Summer Time starts Sunday 2025-03-30.
    friday = datetime(2025, 3, 28, 16, tzinfo=UTC)
    saturday = datetime(2025, 3, 29, 12, tzinfo=UTC)
    sent = _series(friday, saturday, friday)
    elapsed = pl.Series([
        # Answered Monday 09:00 UTC = 10:00 BST: Friday 16–17 plus Monday 09–10, 2 h.
        (datetime(2025, 3, 31, 9, tzinfo=UTC) - friday).total_seconds(),
        # Sent on Saturday, answered Monday 08:30 UTC = 09:30 BST: 30 min.
        (datetime(2025, 3, 31, 8, 30, tzinfo=UTC) - saturday).total_seconds(),
        # A 7-day cutoff from Friday 16:00 GMT ends Friday 16:00 UTC = 17:00 BST:
        # 1 h + 4 × 8 h + 8 h = 41 h.
        7 * 86400.0,
    ])
    got = business.business_elapsed(sent, elapsed, tz=LONDON).to_list()
    assert got == [7200.0, 1800.0, 41 * 3600.0]
    assert elapsed[0] == 65 * 3600  # the clock says 65 hours


def test_to_business_keeps_timings_valid_and_drops_unknown_send_times() -> None:
    base = {"study": "s", "series": "s", "year": 2025, "brand": "A", "sector": None,
            "country": None, "channel": "x", "question": "q", "resolution_seconds": None,
            "status": "answered", "cutoff_seconds": 7 * 86400.0}
    t = timings.frame([
        {**base, "sent_at": datetime(2025, 3, 28, 16, tzinfo=UTC), "ack_seconds": 65 * 3600.0},
        {**base, "question": "r", "sent_at": None, "ack_seconds": 60.0},
    ])
    b = business.to_business(t, LONDON)
    assert b["ack_seconds"].to_list() == [7200.0]
    assert b["cutoff_seconds"].to_list() == [41 * 3600.0]


def test_send_windows_in_local_time() -> None:
    df = pl.DataFrame({"sent_at": _series(
        datetime(2025, 3, 28, 16, tzinfo=UTC),   # Friday 16:00 GMT: weekday
        datetime(2025, 3, 29, 12, tzinfo=UTC),   # Saturday: weekend
        datetime(2025, 4, 2, 16, 30, tzinfo=UTC),  # Wednesday 17:30 BST: evening
        datetime(2025, 4, 2, 7, 30, tzinfo=UTC),   # Wednesday 08:30 BST: evening (early)
        None,
    )})
    got = df.select(w=business.send_window(pl.col("sent_at"), LONDON))["w"].to_list()
    assert got == ["weekday", "weekend", "evening", "evening", None]


instants = st.integers(
    min_value=int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000),
    max_value=int(datetime(2027, 1, 1, tzinfo=UTC).timestamp() * 1000),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(instants, st.integers(0, 20 * 86400 * 1000)), min_size=1, max_size=8),
       st.sampled_from([LONDON, "America/New_York", "Australia/Sydney", "UTC"]))
def test_vectorised_equals_hours_business_seconds(
    pairs: list[tuple[int, int]], zone: str,
) -> None:
    starts = [datetime.fromtimestamp(s / 1000, UTC) for s, _ in pairs]
    spans = [d / 1000 for _, d in pairs]
    got = business.business_elapsed(_series(*starts), pl.Series(spans), tz=zone).to_list()
    expected = [
        business_seconds(s, s + timedelta(seconds=d), business.DEFAULT_WINDOWS, ZoneInfo(zone))
        for s, d in zip(starts, spans, strict=True)
    ]
    assert got == expected
