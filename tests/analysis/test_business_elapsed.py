"""Business-hours elapsed time and send windows, in the study's time zone, with each brand's
own service hours where the study declares them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mystery.analysis import business, report
from mystery.errors import ImportFileError
from mystery.hours import business_seconds, parse_hours
from mystery.timings import schema as timings
from mystery.timings.studyinfo import StudyInfo

LONDON = "Europe/London"


def _series(*times: datetime | None) -> pl.Series:
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


# -- each brand's own service hours ------------------------------------------------------------

# Sent Friday 2025-03-28 16:00 GMT, answered Monday 2025-03-31 09:00 UTC = 10:00 BST: 65 hours on
# the clock, across a weekend whose Sunday is the spring DST change (Sunday is 23 hours long).
FRIDAY = datetime(2025, 3, 28, 16, tzinfo=UTC)
ANSWER = (datetime(2025, 3, 31, 9, tzinfo=UTC) - FRIDAY).total_seconds()
OFFICE = "Office Co"  # no hours declared: Mon–Fri 09:00–17:00
ALWAYS = "Always Co"  # Mon–Fri 08:00–20:00, all weekend
ALWAYS_HOURS = "mon-fri 08:00-20:00; sat,sun 00:00-24:00"


def _two_brands() -> pl.DataFrame:
    base = {"study": "s", "series": "s", "year": 2025, "sector": None, "country": None,
            "channel": "x", "question": "q", "sent_at": FRIDAY, "ack_seconds": ANSWER,
            "resolution_seconds": None, "status": "answered", "cutoff_seconds": 7 * 86400.0}
    return timings.frame([{**base, "brand": brand} for brand in (OFFICE, ALWAYS, OFFICE)])


def test_two_brands_with_different_hours_get_different_business_times() -> None:
    b = business.to_business(_two_brands(), LONDON,
                             brand_hours={ALWAYS: parse_hours(ALWAYS_HOURS)})
    assert ANSWER == 65 * 3600
    # Office Co: Friday 16–17 GMT, Monday 09–10 BST = 2 h.
    # Always Co: Friday 16–20 GMT (4 h), Saturday (24 h), Sunday 00:00 GMT to 24:00 BST (23 h:
    # the clocks go forward), Monday 08–10 BST (2 h) = 53 h.
    # (timings are sorted: Always Co's row comes first.) The 7-day cutoff ends Friday 16:00
    # UTC = 17:00 BST. Office Co: 1 + 4 × 8 + 8 = 41 h; Always Co: 4 + 24 + 23 + 4 × 12 +
    # (08:00–17:00 BST) 9 = 108 h.
    assert b.select("brand", "ack_seconds", "cutoff_seconds").rows() == [
        (ALWAYS, 53 * 3600.0, 108 * 3600.0),
        (OFFICE, 7200.0, 41 * 3600.0),
        (OFFICE, 7200.0, 41 * 3600.0),
    ]


def test_brand_hours_equal_to_the_default_or_for_absent_brands_change_nothing() -> None:
    t = _two_brands()
    plain = business.to_business(t, LONDON)
    assert business.to_business(t, LONDON, brand_hours={}).equals(plain)
    assert business.to_business(
        t, LONDON, brand_hours={"Nobody": parse_hours(ALWAYS_HOURS),
                                ALWAYS: list(business.DEFAULT_WINDOWS)}).equals(plain)


def test_the_report_counts_each_brands_hours_and_says_so(tmp_path: Path) -> None:
    info = StudyInfo(name="s", series="s", year=2025, timezone=LONDON,
                     hours={ALWAYS: ALWAYS_HOURS})
    info.write(tmp_path)
    assert StudyInfo.read(tmp_path) == info  # publish reads the hours back from study.json
    table = report.summary(_two_brands(), info).sort("brand")
    assert table.select("brand", "business_median_ack_seconds").rows() == [
        (ALWAYS, 53 * 3600.0), (OFFICE, 7200.0)]
    report.write_report(_two_brands(), tmp_path, info)
    text = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert f"each brand's own service hours where the study declares them ({ALWAYS} " \
           f"({ALWAYS_HOURS})); Mon–Fri 09:00–17:00 for the others" in text


def test_study_json_has_no_hours_key_unless_a_brand_declares_hours() -> None:
    plain = StudyInfo(name="s", series="s", year=2025)
    assert '"hours"' not in plain.to_json()
    assert '"Always Co": "mon-fri 08:00-20:00; sat,sun 00:00-24:00"' in StudyInfo(
        name="s", series="s", year=2025, hours={ALWAYS: ALWAYS_HOURS}).to_json()


def test_a_bad_hours_entry_in_study_json_is_refused_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "study.json").write_text(
        '{"name": "s", "series": "s", "year": 2025, "hours": {"A": "weekdays 9-5"}}',
        encoding="utf-8")
    with pytest.raises(ImportFileError, match=r"hours: cannot read 'weekdays 9-5'.*mystery export"):
        StudyInfo.read(tmp_path)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(instants, st.integers(0, 10 * 86400 * 1000), st.sampled_from("ABC")),
                min_size=1, max_size=8))
def test_grouped_by_brand_equals_hours_business_seconds_row_by_row(
    rows: list[tuple[int, int, str]],
) -> None:
    own = {"A": parse_hours("daily 07:30-19:00"), "B": parse_hours("mon-sat 10:00-14:00")}
    base = {"study": "s", "series": "s", "year": 2025, "sector": None, "country": None,
            "channel": "x", "question": "q", "resolution_seconds": None, "status": "answered",
            "cutoff_seconds": 10 * 86400.0}
    t = timings.frame([{**base, "brand": brand, "ack_seconds": span / 1000,
                        "sent_at": datetime.fromtimestamp(start / 1000, UTC)}
                       for start, span, brand in rows])
    got = business.to_business(t, LONDON, brand_hours=own)["ack_seconds"].to_list()
    expected = [
        business_seconds(s, s + timedelta(seconds=d), own.get(b, business.DEFAULT_WINDOWS),
                         ZoneInfo(LONDON))
        for s, d, b in zip(t["sent_at"], t["ack_seconds"], t["brand"], strict=True)
    ]
    assert got == expected


def test_converting_every_duration_at_once_equals_one_at_a_time() -> None:
    import numpy as np

    rng = np.random.default_rng(5)
    n = 300
    start = datetime(2025, 3, 20, tzinfo=UTC).timestamp() * 1000
    sent = pl.Series("sent_at", (start + rng.integers(0, 30 * 86400_000, n)).astype("int64"))
    ack = rng.uniform(0, 7 * 86400, n).round(3)
    df = pl.DataFrame({
        "brand": [f"B{i % 3}" for i in range(n)],
        "sent_at": sent.cast(pl.Datetime("ms", "UTC")),
        "ack_seconds": np.where(rng.random(n) < 0.7, ack, np.nan),
        "resolution_seconds": np.where(rng.random(n) < 0.4, ack * 1.5, np.nan),
        "cutoff_seconds": np.where(rng.random(n) < 0.9, 7 * 86400.0, np.nan),
    }).with_columns(pl.col("ack_seconds", "resolution_seconds", "cutoff_seconds").fill_nan(None))
    own = {"B1": parse_hours("mon-sat 08:00-20:00")}
    for hours in ({}, own):
        got = business.to_business(df, LONDON, brand_hours=hours)
        for brand in ("B0", "B1", "B2"):
            part = df.filter(pl.col("brand") == brand)
            windows = hours.get(brand, business.DEFAULT_WINDOWS)
            for column in ("ack_seconds", "resolution_seconds", "cutoff_seconds"):
                one = business.business_elapsed(part["sent_at"], part[column], windows, LONDON)
                assert got.filter(pl.col("brand") == brand)[column].equals(one.alias(column))


def test_a_study_s_holiday_calendar_closes_business_hours_and_the_note_says_so(
    tmp_path: Path,
) -> None:
    """Thursday 2 April 2026, 16:00 in London, answered Monday 6 April 16:00: sixteen working
    hours in an ordinary week, one in England's Easter (Good Friday and Easter Monday)."""
    import csv as csvlib

    from mystery.analysis.report import write_report
    from mystery.timings import schema as timings
    from mystery.timings.schema import TimingRow
    from mystery.timings.studyinfo import StudyInfo

    sent = datetime(2026, 4, 2, 15, tzinfo=UTC)  # 16:00 BST
    row = TimingRow(study="easter", series="easter", year=2026, brand="Acme", sector=None,
                    country=None, channel="x", question="q", sent_at=sent,
                    ack_seconds=4 * 86400.0, resolution_seconds=4 * 86400.0,
                    status="answered", cutoff_seconds=7 * 86400.0)
    df = timings.frame([row])
    minutes = {}
    for calendar in (None, "GB-ENG"):
        info = StudyInfo(name="easter", series="easter", year=2026, timezone="Europe/London",
                         holidays=calendar)
        out = tmp_path / str(calendar)
        write_report(df, out, info)
        [summary] = list(csvlib.DictReader((out / "summary.csv").read_text().splitlines()))
        minutes[calendar] = float(summary["median_ack_business_minutes"])
        note = (out / "summary.md").read_text()
        assert ("Closed on the public holidays of GB-ENG" in note) == (calendar is not None)
    assert minutes == {None: 16 * 60.0, "GB-ENG": 60.0}
