"""Timings: the seam's schema, its rules, and its byte-stable CSV form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from mystery.errors import ImportFileError
from mystery.timings import schema as timings

HEADER = ("study,series,year,brand,sector,country,channel,question,sent_at,ack_seconds,"
          "resolution_seconds,status,cutoff_seconds")


def row(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "study": "demo", "series": "demo", "year": 2026, "brand": "Fresh Lane",
        "sector": "grocery", "country": "UK", "channel": "x", "question": "delivery",
        "sent_at": datetime(2026, 3, 2, 9, 14, 5, 123000, tzinfo=UTC), "ack_seconds": 540.0,
        "resolution_seconds": 600.5, "status": "answered", "cutoff_seconds": 604800.0,
    }
    return {**base, **changes}


def test_csv_form_is_fixed_utc_milliseconds_and_three_decimals(tmp_path: Path) -> None:
    plus_one = timezone(timedelta(hours=1))
    df = timings.frame([
        row(question="stock", sent_at=datetime(2026, 3, 3, 10, 0, tzinfo=plus_one),
            ack_seconds=None, resolution_seconds=None, status="unanswered", sector=""),
        row(),
    ])
    path = timings.write_csv(df, tmp_path / "timings.csv")
    assert path.read_bytes().decode() == "\n".join([
        HEADER,
        "demo,demo,2026,Fresh Lane,grocery,UK,x,delivery,2026-03-02T09:14:05.123Z,540.000,"
        "600.500,answered,604800.000",
        "demo,demo,2026,Fresh Lane,,UK,x,stock,2026-03-03T09:00:00.000Z,,,unanswered,"
        "604800.000",
        "",
    ])
    again = timings.read_csv(path)
    assert timings.to_csv_bytes(again) == path.read_bytes()
    assert again["sent_at"][1] == datetime(2026, 3, 3, 9, tzinfo=UTC)


def test_rows_that_break_the_rules_are_named() -> None:
    with pytest.raises(ImportFileError) as caught:
        timings.frame([
            row(ack_seconds=None),  # answered without a time
            row(status="unanswered"),  # unanswered with a time
            row(resolution_seconds=10.0),  # resolved before acknowledged
            row(ack_seconds=700000.0, resolution_seconds=None),  # past the cutoff
            row(status="maybe"),
        ])
    text = str(caught.value)
    assert "row 1, column ack_seconds: is empty but status is answered" in text
    assert "row 2, column ack_seconds: has a time but status is unanswered" in text
    assert "row 3, column resolution_seconds: is before the acknowledgement" in text
    assert "row 4, column ack_seconds: is past cutoff_seconds" in text
    assert "row 5, column status: must be answered, unanswered or excluded" in text


def test_unknown_or_missing_keys_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown \\['text'\\]"):
        timings.frame([{**row(), "text": "reply text never belongs in timings"}])


def test_read_csv_reports_bad_cells_with_row_and_column(tmp_path: Path) -> None:
    path = tmp_path / "timings.csv"
    path.write_text(HEADER + "\n" + "demo,demo,2026,A,,,x,q,2026-03-02 09:14,9 min,,answered,"
                    "604800\n", encoding="utf-8")
    with pytest.raises(ImportFileError) as caught:
        timings.read_csv(path)
    text = str(caught.value)
    assert "row 2, column sent_at: '2026-03-02 09:14' is not a UTC time" in text
    assert "row 2, column ack_seconds: '9 min' is not a number of seconds" in text


def test_read_csv_refuses_another_header(tmp_path: Path) -> None:
    path = tmp_path / "timings.csv"
    path.write_text("study,brand\ndemo,A\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match="header must be exactly"):
        timings.read_csv(path)


def test_fast_time_parser_equals_polars_parser() -> None:
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(3)
    epoch = rng.integers(-2_000_000_000_000, 7_000_000_000_000, 5000)  # 1906 to 2191
    stamps = pl.Series("sent_at", epoch).cast(pl.Datetime("ms", "UTC"))
    text = stamps.dt.strftime(timings.TIME_FORMAT)
    parsed = timings._parse_fixed_times(text)
    assert parsed is not None
    assert parsed.equals(stamps)
    assert parsed.equals(text.str.to_datetime(timings.TIME_FORMAT, time_unit="ms",
                                              time_zone="UTC"))
    # Anything but the exact form is left to the general parser (which reports bad cells).
    for odd in ("2026-02-29T09:00:00.000Z", "2026-13-01T09:00:00.000Z",
                "2026-03-02 09:00:00.000Z", "2026-03-02T24:00:00.000Z",
                "2026-03-02T09:00:00Z", "2026-03-0xT09:00:00.000Z", None):
        assert timings._parse_fixed_times(pl.Series("sent_at", [text[0], odd])) is None


def test_rows_out_of_order_are_sorted_and_rows_in_order_kept(tmp_path: Path) -> None:
    rows = [row(question=q, brand=b, sent_at=datetime(2026, 3, 2, h, tzinfo=UTC))
            for q, b, h in (("q2", "B", 9), ("q1", "A", 9), ("q1", "A", 8), (None, "A", 9),
                            ("q1", "A", 9), ("", "C", 7))]
    df = timings.frame(rows)
    expected = df.sort(list(timings.SORT_KEYS), nulls_last=True, maintain_order=True)
    assert timings.normalise(df.reverse()).equals(expected)
    assert timings.normalise(expected).equals(expected)
    path = timings.write_csv(df, tmp_path / "timings.csv")
    assert timings.read_csv(path).equals(expected)


def test_a_file_read_is_in_order_whatever_order_its_rows_came_in(tmp_path: Path) -> None:
    """The fast read decides the order from two keys and compares rows tied on them on every
    key: rows swapped on a deep key only (same study and send time) must still be sorted,
    and a blank cell, which becomes null and sorts last, must move its row."""
    import itertools

    import polars as pl

    at = "2026-03-02T09:00:00.000Z"
    later = "2026-03-02T10:00:00.000Z"
    lines = [f"demo,demo,2026,A,,,x,q1,{at},5.000,,answered,60.000",
             f"demo,demo,2026,A,,,x,q1,{at},7.000,,answered,60.000",
             f"demo,demo,2026,A,,,x,q2,{at},1.000,,answered,60.000",
             f"demo,demo,2026,B,,,x,q1,{at},1.000,,answered,60.000",
             f"demo,demo,2026,A,,,x, ,{later},1.000,,answered,60.000",
             f"demo,demo,2026,A,,,x,q1,{later},2.000,,answered,60.000"]
    expected = None
    for n, order in enumerate(itertools.permutations(range(len(lines)), len(lines))):
        if n % 37:  # 20 of the 720 orders, the sorted one among them
            continue
        path = tmp_path / f"t{n}.csv"
        path.write_text(HEADER + "\n" + "\n".join(lines[i] for i in order) + "\n")
        got = timings.read_csv(path)
        if expected is None:
            expected = got
        assert got.equals(expected), order
    assert expected is not None
    assert expected["ack_seconds"].to_list() == [5.0, 7.0, 1.0, 1.0, 2.0, 1.0]
    assert expected["question"].to_list()[-1] is None  # the blank, last of its time
    assert expected.equals(timings.normalise(expected.sample(fraction=1.0, shuffle=True,
                                                             seed=1)))
    assert pl.Series(expected["sent_at"]).is_sorted()
