"""Timings: one row per probe, the seam between collecting and analysing.

Everything that analyses (metrics, tables, charts, publish) reads this frame and nothing else
from the collecting side, so a fresh study from the store and a study imported from published
probe-level figures meet here and year-on-year comparison needs no special case.

Schema (``SCHEMA``, in this column order; CSV files use the same header):

====================  =========================  ==================================================
column                type                       meaning
====================  =========================  ==================================================
study                 str                        the study's name (one wave of measurement)
series                str                        the series it belongs to (year-on-year unit)
year                  int                        the study's year
brand                 str                        the brand asked
sector                str, may be empty          the brand's sector
country               str, may be empty          the brand's country
channel               str                        ``x``, ``mastodon``, ``bluesky``, ``email``, …
question              str, may be empty          the question id from the study's question bank
sent_at               datetime (UTC, ms), may    when the platform says the probe was posted;
                      be empty                   empty only for imported probes with no time
ack_seconds           float, may be empty        seconds from sent_at to the first reply
                                                 (acknowledgement); empty when unanswered
resolution_seconds    float, may be empty        seconds to the first reply coded as answering;
                                                 empty when not resolved by the cutoff (censored)
status                ``answered`` |             ``unanswered``: no reply by the cutoff, censored
                      ``unanswered`` |           at ``cutoff_seconds`` and never dropped;
                      ``excluded``               ``excluded``: not a valid probe (e.g. never
                                                 sent), left out of every figure
cutoff_seconds        float, may be empty        how long the probe waited; empty only for
                                                 imported probes whose study stated no cutoff
account               str, may be empty;         the researcher account that sent the probe, for
                      optional in a CSV          a study with several accounts on a channel
                                                 (``accounts = [...]``); left out of the CSV
                                                 (and empty) otherwise
====================  =========================  ==================================================

Why ``account`` is optional in the CSV: every timings file written before team studies, and
every published study imported from others, has the first thirteen columns only, and keeps its
bytes; a team study's file adds the column at the end, so that its tables can be cut by who
asked.

CSV form (``write_csv``): UTF-8, ``\\n`` line ends, header row, times as
``2026-03-02T09:14:05.123Z``, seconds with exactly three decimals (milliseconds), empty cells
for missing values, rows sorted by study, sent_at, brand, channel, question; so the same
timings always give the same bytes and a diff shows only real changes. No reply text, agent
name or credential is ever part of timings (an account's name, for a team study, is).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

from mystery.errors import ImportFileError, Problem
from mystery.words import Outcome

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import polars as pl

COLUMNS = (
    "study", "series", "year", "brand", "sector", "country", "channel", "question",
    "sent_at", "ack_seconds", "resolution_seconds", "status", "cutoff_seconds",
)  # fmt: skip
STATUSES = ("answered", "unanswered", "excluded")
ACCOUNT = "account"
ALL_COLUMNS = (*COLUMNS, ACCOUNT)
"""Every column of a timings frame: ``COLUMNS`` then the optional ``account``."""


class TimingRow(TypedDict):
    """One probe's row, as code builds it before it becomes a frame (``COLUMNS``, in order)."""

    study: str
    series: str
    year: int
    brand: str
    sector: str | None
    country: str | None
    channel: str
    question: str | None
    sent_at: datetime | None
    ack_seconds: float | None
    resolution_seconds: float | None
    status: Outcome
    cutoff_seconds: float | None
    account: NotRequired[str | None]


TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%.3fZ"
SORT_KEYS = ("study", "sent_at", "brand", "channel", "question", "ack_seconds")
_REQUIRED = ("study", "series", "year", "brand", "channel", "status")
_FLOATS = ("ack_seconds", "resolution_seconds", "cutoff_seconds")
_MAX_SHOWN = 20


def schema() -> pl.Schema:
    """The polars schema of a timings frame (a function so importing this module stays light)."""
    import polars as pl

    types: dict[str, pl.DataType] = {
        "year": pl.Int32(),
        "sent_at": pl.Datetime("ms", "UTC"),
        **{name: pl.Float64() for name in _FLOATS},
    }
    return pl.Schema({name: types.get(name, pl.String()) for name in COLUMNS})


def full_schema() -> pl.Schema:
    """:func:`schema` and the optional ``account`` column: every timings frame has it (empty
    unless a team study's), so frames of any studies concatenate."""
    import polars as pl

    return pl.Schema({**schema(), ACCOUNT: pl.String()})


def empty() -> pl.DataFrame:
    """A timings frame with no rows, for sources that contribute nothing."""
    import polars as pl

    return pl.DataFrame(schema=full_schema())


def frame(rows: Iterable[TimingRow] | Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """Build a timings frame from rows (:func:`mystery.timings.export.timing_rows`, or an
    imported file's rows).

    ``sent_at`` may be an aware datetime in any zone (it is converted to UTC) or None. Missing
    or unknown keys are a programming error (ValueError); rows that break the rules of the
    schema raise ImportFileError naming each row, so bad data never reaches a table.
    """
    import polars as pl

    materialised = [{ACCOUNT: None, **row} for row in rows]
    for number, row in enumerate(materialised, start=1):
        missing = [c for c in COLUMNS if c not in row]
        unknown = sorted(set(row) - set(ALL_COLUMNS))
        if missing or unknown:
            raise ValueError(f"timing row {number}: missing {missing}, unknown {unknown}")
    df = (pl.DataFrame(materialised, schema=full_schema(), orient="row") if materialised
          else empty())
    check(df, "timings")
    return normalise(df)


def normalise(df: pl.DataFrame) -> pl.DataFrame:
    """Fixed column order, stable row order and one spelling of "unknown" (null, not ``""``):
    the preconditions of byte-stable output and of grouping that does not split on blanks."""
    if ACCOUNT not in df.columns:  # a file from before team studies, or an imported one
        df = _with_account(df)
    df = _normalised(df, _BLANKABLE, ordered=True)  # blanks first: a null sorts elsewhere
    if df.height > 1 and df.select(_in_order()).item():
        return df
    return _normalised(df, (), ordered=False)


_BLANKABLE = ("sector", "country", "question", ACCOUNT)
"""The optional text columns, where a blank cell means unknown."""


def _blank(column: str) -> pl.Expr:
    import polars as pl

    return pl.col(column).str.strip_chars() == ""


def _with_account(df: pl.DataFrame) -> pl.DataFrame:
    import polars as pl

    return df.with_columns(pl.lit(None, dtype=pl.String()).alias(ACCOUNT))


def _normalised(df: pl.DataFrame, blank: Iterable[str], ordered: bool) -> pl.DataFrame:
    """``normalise`` once it is known which columns may hold blanks and whether the rows are
    in order already (as every file write_csv wrote: a stable sort would be a no-op)."""
    import polars as pl

    df = df.select(ALL_COLUMNS).with_columns(
        pl.when(_blank(c)).then(None).otherwise(pl.col(c)).alias(c) for c in blank)
    if ordered:
        return df
    return df.sort(list(SORT_KEYS), nulls_last=True, maintain_order=True)


def _in_order() -> pl.Expr:
    """Whether every row sorts at or after the one before it by ``SORT_KEYS``, nulls last:
    a few comparisons instead of a sort. False when a time is NaN (left to the sort)."""
    import polars as pl

    ordered = pl.lit(True)  # rows equal on every key: a stable sort keeps them as they are
    for key in reversed(SORT_KEYS):
        now, before = pl.col(key), pl.col(key).shift(1)
        after = (now > before) | (now.is_null() & before.is_not_null())
        ahead = (now < before) | (now.is_not_null() & before.is_null())
        ordered = after.fill_null(False) | (~ahead.fill_null(False) & ordered)
    no_nan = ~pl.col("ack_seconds").is_nan().any().fill_null(False)
    return ordered.slice(1).all() & no_nan


def _rules() -> list[tuple[pl.Expr, str, str]]:
    """Each rule of :func:`check`: a row flag that breaks it, its column, and why."""
    import polars as pl

    ack, res, cutoff = pl.col("ack_seconds"), pl.col("resolution_seconds"), pl.col("cutoff_seconds")
    answered = pl.col("status") == "answered"
    return [
        *(
            (pl.col(c).is_null() | (pl.col(c) == ""), c, "is empty; every probe needs it")
            for c in _REQUIRED
            if c != "year"
        ),
        (pl.col("year").is_null(), "year", "is empty; every probe needs it"),
        (~pl.col("status").is_in(STATUSES), "status", "must be answered, unanswered or excluded"),
        (answered & ack.is_null(), "ack_seconds", "is empty but status is answered"),
        (
            (pl.col("status") == "unanswered") & (ack.is_not_null() | res.is_not_null()),
            "ack_seconds", "has a time but status is unanswered; set status to answered",
        ),
        (ack < 0, "ack_seconds", "is negative; a reply cannot come before its probe"),
        (res < ack, "resolution_seconds", "is before the acknowledgement"),
        (cutoff <= 0, "cutoff_seconds", "must be positive"),
        (
            answered & (ack > cutoff),
            "ack_seconds", "is past cutoff_seconds; a reply after the cutoff is unanswered",
        ),
        (
            answered & (res > cutoff),
            "resolution_seconds", "is past cutoff_seconds; leave it empty (not resolved)",
        ),
    ]


def check(df: pl.DataFrame, file: str, first_row: int = 1) -> None:
    """Raise ImportFileError listing every row that breaks the schema's rules.

    The rules are what every later computation relies on: an answered probe has an
    acknowledgement time within its cutoff, an unanswered one has none, a resolution never
    comes before the acknowledgement.
    """
    import polars as pl

    rules = _rules()
    flagged = df.with_row_index("_row").select(
        "_row", *(rule.fill_null(False).alias(f"r{i}") for i, (rule, _, _) in enumerate(rules))
    )
    problems: list[Problem] = []
    for i, (_, column, why) in enumerate(rules):
        for row in flagged.filter(pl.col(f"r{i}"))["_row"].to_list():
            problems.append(Problem(file, f"row {row + first_row}, column {column}", why))
    if problems:
        problems.sort(key=lambda p: int(p.where.split(",")[0].removeprefix("row ")))
        shown = problems[:_MAX_SHOWN]
        if len(problems) > _MAX_SHOWN:
            shown.append(Problem(file, "", f"… and {len(problems) - _MAX_SHOWN} more problems"))
        raise ImportFileError(shown)


def _checked(df: pl.DataFrame, file: str) -> pl.DataFrame:
    """:func:`check` then :func:`normalise` of a well-formed file, the common case in one pass:
    whether any rule is broken, which columns hold a blank, and whether the rows are in order
    are flags of one query (two keys decide the order of nearly every row; rows tied on them
    are compared on every key), and the row-by-row work runs only where a flag says so."""
    import polars as pl

    if ACCOUNT not in df.columns:
        df = _with_account(df)
    rules = _rules()
    study, sent = pl.col("study"), pl.col("sent_at")

    def after(key: pl.Expr) -> pl.Expr:  # strictly after the row before it, nulls last
        before = key.shift(1)
        return ((key > before) | (key.is_null() & before.is_not_null())).fill_null(False)

    def ahead(key: pl.Expr) -> pl.Expr:  # strictly before the row before it
        before = key.shift(1)
        return ((key < before) | (key.is_not_null() & before.is_null())).fill_null(False)

    level = ~after(study) & ~ahead(study)
    tied = level & ~after(sent) & ~ahead(sent)
    flags = df.select(
        *(rule.fill_null(False).any().alias(f"rule{i}") for i, (rule, _, _) in enumerate(rules)),
        *(_blank(c).any().alias(c) for c in _BLANKABLE),
        disorder=(ahead(study) | (level & ahead(sent))).slice(1).any(),
        nan=pl.col("ack_seconds").is_nan().any().fill_null(False),
    ).row(0, named=True)
    if any(flags[f"rule{i}"] for i in range(len(rules))):
        check(df, file, first_row=2)  # raises, naming every row
    if any(flags[c] for c in _BLANKABLE):  # blanks become nulls, which sort elsewhere
        return normalise(df)
    ordered = df.height > 1 and not flags["disorder"] and not flags["nan"]
    if ordered:
        ties = df.filter(tied | tied.shift(-1).fill_null(False))
        ordered = ties.height < 2 or bool(ties.select(_in_order()).item())
    return _normalised(df, (), ordered)


def read_csv(path: str | Path) -> pl.DataFrame:
    """Read a timings CSV written by ``write_csv`` (or by hand, in the same form).

    Every cell is read as text and converted column by column, so a bad cell is reported with
    its row and column instead of failing the whole read with a parser error.
    """
    import polars as pl

    path = Path(path)
    file = str(path)
    fast = _read_typed(path)
    if fast is not None:
        return _checked(fast, file)
    try:
        raw = pl.read_csv(path, infer_schema=False, encoding="utf8")
    except FileNotFoundError:
        raise ImportFileError([Problem(file, "", "no such file; run mystery export")]) from None
    except pl.exceptions.PolarsError as exc:
        raise ImportFileError([Problem(file, "", f"not a readable CSV: {exc}")]) from None
    missing = [c for c in COLUMNS if c not in raw.columns]
    unknown = [c for c in raw.columns if c not in ALL_COLUMNS]
    if missing or unknown:
        raise ImportFileError(
            [Problem(file, "row 1", f"header must be exactly {','.join(COLUMNS)} "
                     f"(and optionally {ACCOUNT}) (missing: {', '.join(missing) or 'none'}; "
                     f"unknown: {', '.join(unknown) or 'none'})")]
        )
    if ACCOUNT not in raw.columns:
        raw = raw.with_columns(pl.lit(None, dtype=pl.String()).alias(ACCOUNT))
    target = full_schema()
    converted = raw.select(
        pl.col("year").str.strip_chars().cast(pl.Int32, strict=False),
        pl.col("sent_at").str.to_datetime(TIME_FORMAT, time_unit="ms", time_zone="UTC",
                                          strict=False),
        *(pl.col(c).str.strip_chars().cast(pl.Float64, strict=False) for c in _FLOATS),
        *(pl.col(c) for c in ALL_COLUMNS if target[c] == pl.String()),
    ).select(ALL_COLUMNS)
    problems: list[Problem] = []
    for column, hint in (
        ("year", "a whole number such as 2026"),
        ("sent_at", "a UTC time such as 2026-03-02T09:14:05.123Z"),
        *((c, "a number of seconds such as 540.000") for c in _FLOATS),
    ):
        if raw[column].null_count() == converted[column].null_count():
            continue  # every cell converted: the common case, checked in one pass
        bad = raw.with_row_index("_row").filter(
            pl.col(column).is_not_null() & converted[column].is_null()
        )
        for row, value in zip(bad["_row"].to_list(), bad[column].to_list(), strict=True):
            problems.append(Problem(file, f"row {row + 2}, column {column}",
                                    f"{value!r} is not {hint}"))
    if problems:
        raise ImportFileError(problems[:_MAX_SHOWN])
    check(converted, file, first_row=2)
    return normalise(converted)


def _read_typed(path: Path) -> pl.DataFrame | None:
    """The fast read of a well-formed file (what write_csv writes); None when anything is off,
    and the careful cell-by-cell read then says what."""
    import polars as pl

    overrides = {c: (pl.String() if c == "sent_at" else t) for c, t in full_schema().items()}
    try:
        header = pl.read_csv(path, n_rows=0).columns
        if header not in (list(COLUMNS), list(ALL_COLUMNS)):
            return None
        df = pl.read_csv(path, schema_overrides={c: overrides[c] for c in header})
        sent = _parse_fixed_times(df["sent_at"])
        if sent is not None:
            return df.with_columns(sent)
        return df.with_columns(
            pl.col("sent_at").str.to_datetime(TIME_FORMAT, time_unit="ms", time_zone="UTC")
        )
    except (pl.exceptions.PolarsError, OSError):
        return None


_TIME_DIGITS = (0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22)
_TIME_MARKS = {4: "-", 7: "-", 10: "T", 13: ":", 16: ":", 19: ".", 23: "Z"}
_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _parse_fixed_times(sent: pl.Series) -> pl.Series | None:
    """``sent_at`` as ``write_csv`` writes it (``2026-03-02T09:14:05.123Z``, every cell that
    wide) parsed with NumPy on the characters: a third of the cost of ``str.to_datetime``.
    None when any cell is empty, of another width or not a valid time: the general parser
    then reads the column (and reports bad cells)."""
    import numpy as np
    import polars as pl

    width = len("2026-03-02T09:14:05.123Z")
    if sent.is_empty() or sent.null_count() or (sent.str.len_bytes() != width).any():
        return None
    text = np.frombuffer(sent.str.join("").item().encode("utf-8"), dtype=np.uint8)
    cells = text.reshape(-1, width)
    for at, mark in _TIME_MARKS.items():
        if (cells[:, at] != ord(mark)).any():
            return None
    # Bytes, not int64: a character below "0" wraps past 9, and a million cells of 17
    # digits stay 17 MB rather than 136 (fresh memory is what a fresh process pays for).
    digits = cells[:, _TIME_DIGITS] - np.uint8(ord("0"))
    if (digits > 9).any():
        return None

    def number(first: int, count: int) -> npt.NDArray[np.int64]:
        value = digits[:, first].astype(np.int64)
        for i in range(first + 1, first + count):
            value = value * 10 + digits[:, i]
        return value

    year, month, day = number(0, 4), number(4, 2), number(6, 2)
    hour, minute, second, milli = number(8, 2), number(10, 2), number(12, 2), number(14, 3)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    in_month = np.asarray(_MONTH_DAYS)[np.clip(month - 1, 0, 11)] + (leap & (month == 2))
    if ((month < 1) | (month > 12) | (day < 1) | (day > in_month) | (hour > 23)
            | (minute > 59) | (second > 59)).any():
        return None
    # Days since 1970-01-01 of a proleptic Gregorian date (the civil-from-days inverse).
    shifted = year - (month <= 2)
    era = shifted // 400
    of_era = shifted - era * 400
    of_year = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    days = era * 146097 + of_era * 365 + of_era // 4 - of_era // 100 + of_year - 719468
    epoch_ms = ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + milli
    return pl.Series("sent_at", epoch_ms).cast(pl.Datetime("ms", "UTC"))


def write_csv(df: pl.DataFrame, path: str | Path) -> Path:
    """Write timings in their byte-stable CSV form (see the module docstring)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(to_csv_bytes(df))
    return path


def to_csv_bytes(df: pl.DataFrame) -> bytes:
    """The exact bytes ``write_csv`` writes, for comparing without touching the disk."""
    df = normalise(df)
    if df[ACCOUNT].null_count() == df.height:  # no team study: the thirteen columns of old
        df = df.drop(ACCOUNT)
    text = df.write_csv(
        datetime_format=TIME_FORMAT, float_precision=3, line_terminator="\n"
    )
    return text.encode("utf-8")
