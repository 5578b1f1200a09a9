"""One row of a published-figures CSV: the format's columns and the rules of each cell.

The file-level work (reading, the header, rules between rows, copying into ``studies/``) is in
:mod:`mystery.timings.importer`; this module turns one record into values, collecting a problem
(row, column, value, why, fix) for every bad cell rather than stopping at the first, so a
researcher fixes a spreadsheet in one pass. The format itself is described there.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from mystery.durations import is_bound, parse_published_minutes
from mystery.errors import Problem
from mystery.words import CHANNELS

REQUIRED = ("study", "year", "brand", "channel")
OPTIONAL = (
    "series", "level", "sector", "country", "question", "response_minutes",
    "resolution_minutes", "statistic", "responded", "response_rate", "answered", "probes",
    "brands", "listed", "published_as", "cutoff_minutes", "sent_at", "source_url", "note",
)  # fmt: skip
LEVELS = ("probe", "brand", "study")
LISTS = ("all", "fastest", "slowest", "some")
EXTREMES = ("fastest", "slowest")
# A row that sums up the study ("ALL (40 leading UK retailers)", "Average", "Total") is a
# study-level figure: ranked as a brand, it would win or lose "fastest" against the brands it
# averages. Narrow on purpose: "All Saints" is a brand.
AGGREGATE = re.compile(
    r"^\s*(?:all\s*\(|all\s+(?:brands|retailers|companies|firms)\b|"
    r"(?:total|overall|average|mean|median)\b)", re.IGNORECASE)
SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0"}
_CHANNEL_ALIASES = {"twitter": "x", "x.com": "x", "e-mail": "email", "mail": "email"}


class Row:
    """One CSV record being validated: collects problems instead of stopping at the first."""

    def __init__(self, file: str, number: int, cells: dict[str, str]) -> None:
        self.file, self.number, self.cells = file, number, cells
        self.problems: list[Problem] = []

    def bad(self, column: str, why: str) -> None:
        value = self.cells.get(column, "")
        self.problems.append(
            Problem(self.file, f"row {self.number}, column {column}", f"{value!r}: {why}")
        )

    def text(self, column: str) -> str:
        return self.cells.get(column, "").strip()

    def minutes_of(self, column: str) -> float | None:
        """A published time (``9`` minutes, ``2:38``, ``9 h 03 min``) in seconds, or None.

        Seconds, not minutes: ``2:38`` is 158 s exactly, and stays so to the outputs."""
        raw = self.text(column)
        if not raw:
            return None
        try:
            return parse_published_minutes(raw)
        except ValueError as exc:
            self.bad(column, str(exc))
            return None

    def count_of(self, column: str, least: int, example: str) -> int | None:
        """A whole count (probes, answered, brands) of at least ``least``, or None."""
        raw = self.text(column)
        if not raw:
            return None
        if is_bound(raw):
            self.bad(column, "is a bound, not a count; mystery keeps only published figures: "
                     "leave it empty (unknown) and quote the bound in note")
        elif raw.isdigit() and int(raw) >= least:
            return int(raw)
        else:
            self.bad(column, f"must be a whole number, at least {least}, e.g. {example}")
        return None

    def choice(self, column: str, allowed: tuple[str, ...]) -> str:
        raw = self.text(column).lower()
        if raw and raw not in allowed:
            self.bad(column, f"write one of {', '.join(allowed)} (or leave it empty)")
            return ""
        return raw


def _slug(row: Row, column: str, required: bool) -> str:
    value = row.text(column)
    if not value:
        if required:
            row.bad(column, "is empty; every row needs it")
        return ""
    if not SLUG.match(value):
        row.bad(column, "use lower-case letters, digits, '-' and '_', e.g. veeqo-uk-retail-2014")
    return value


def _year(row: Row) -> int | None:
    raw = row.text("year")
    if not raw:
        row.bad("year", "is empty; give the year the study ran, e.g. 2014")
        return None
    if not raw.isdigit() or not 1990 <= int(raw) <= 2100:
        row.bad("year", "not a year; write four digits, e.g. 2014")
        return None
    return int(raw)


def _channel(row: Row) -> str:
    raw = row.text("channel").lower()
    value = _CHANNEL_ALIASES.get(raw, raw)
    if not raw:
        row.bad("channel", "is empty; name the channel, e.g. x (twitter) or email")
    elif value not in CHANNELS:
        row.bad("channel", f"unknown channel; use one of twitter, {', '.join(CHANNELS)}")
    return value


def _responded(row: Row) -> bool | None:
    raw = row.text("responded").lower()
    if not raw:
        return None
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    row.bad("responded", "write true or false (or leave it empty on a brand row)")
    return None


def _rate(row: Row) -> float | None:
    raw = row.text("response_rate")
    if not raw:
        return None
    if is_bound(raw):
        row.bad("response_rate", "is a bound, not a rate; mystery keeps only published "
                "figures: leave it empty (unknown) and quote the bound in note")
        return None
    percent = raw.endswith("%")
    try:
        value = float(raw.removesuffix("%").strip()) / (100 if percent else 1)
    except ValueError:
        row.bad("response_rate", "not a rate; write it like 83.3% or 0.833")
        return None
    if not 0 <= value <= 1:
        row.bad("response_rate", "must be between 0 and 1, or 0% and 100%; e.g. 83.3% or 0.833")
        return None
    return value


def _answered(row: Row, rate: float, probes: int) -> int | None:
    """Answered probes from a published rate: the one whole count the rounded rate allows.

    A published rate is rounded, so the tolerance is half a unit of its last digit times the
    number of probes: ``66.7%`` of 3 is 2, while ``50%`` of 3 is no whole number of probes (an
    error). When several counts fit (``62%`` of 1,185 is anything from 729 to 741), the count
    is unknown: left empty rather than guessed.
    """
    import math

    raw = row.text("response_rate").removesuffix("%").strip()
    decimals = len(raw.split(".")[1]) if "." in raw else 0
    unit = 10.0**-decimals / (100 if row.text("response_rate").endswith("%") else 1)
    exact, slack = rate * probes, unit / 2 * probes + 1e-9
    low, high = math.ceil(exact - slack), math.floor(exact + slack)
    if high < low:
        row.bad(
            "response_rate",
            f"{exact:.2f} of {probes} probes is not a whole number of probes; give the rate "
            "as answered/probes (e.g. 66.7% for 2 of 3) or correct probes",
        )
        return None
    return low if low == high else None


def _sent_at(row: Row) -> datetime | None:
    raw = row.text("sent_at")
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("z", "Z"))
    except ValueError:
        row.bad("sent_at", "not an ISO 8601 time; write e.g. 2014-05-12T09:30:00Z")
        return None
    if value.tzinfo is None:
        row.bad("sent_at", "has no time zone; add Z for UTC or an offset such as +01:00")
        return None
    return value.astimezone(UTC)


def _level(row: Row) -> str:
    """Which kind of row: ``level`` when given, else a probe row when ``responded`` is set and
    a brand row when not (the format before ``level`` existed)."""
    level = row.choice("level", LEVELS)
    if not level and not row.text("level"):
        level = "probe" if row.text("responded") else "brand"
    return level


def validate_row(row: Row) -> dict[str, Any]:
    """Check one record; return its values (meaningful only if it added no problems)."""
    for column, value in row.cells.items():
        if any(not ch.isprintable() for ch in value.strip()):
            # A terminal escape or a bidi override in a brand's name would act on whoever
            # reads the tables and make an SVG chart ill-formed; as in a study file, refused.
            row.bad(column, "contains a line break or control character; write it on one "
                    "line (look for an unclosed quote)")
    study = _slug(row, "study", required=True)
    level = _level(row)
    values: dict[str, Any] = {
        "study": study,
        "series": _slug(row, "series", required=False) or study,
        "year": _year(row),
        "brand": row.text("brand"),
        "sector": row.text("sector") or None,
        "country": row.text("country") or None,
        "channel": _channel(row),
        "kind": level or "brand",
    }
    if not values["brand"] and level != "study":
        row.bad("brand", "is empty; every row needs the brand's name (a figure for the whole "
                "study goes on a row with level study)")
    elif level != "study" and AGGREGATE.match(values["brand"]):
        row.bad("brand", "is a figure for the whole study, not a brand; set level to study "
                "so that it is reported as the study's and never ranked as a brand")
    response = row.minutes_of("response_minutes")
    resolution = row.minutes_of("resolution_minutes")
    cutoff = row.minutes_of("cutoff_minutes")
    if cutoff == 0:
        row.bad("cutoff_minutes", "must be more than zero minutes, e.g. 10080 for 7 days")
    url = row.text("source_url")
    if url and not re.match(r"^https?://\S+$", url):
        row.bad("source_url", "not a web address; write the full http(s):// URL")
    values["cutoff_seconds"] = cutoff or None
    if level == "probe":
        _probe_row(row, values, _responded(row), response, resolution, cutoff)
    elif level == "study":
        _study_row(row, values, response)
    elif level == "brand":
        _brand_row(row, values, response)
    return values


def _misplaced(row: Row, columns: dict[str, str]) -> None:
    for column, why in columns.items():
        if row.text(column):
            row.bad(column, why)


def _probe_row(
    row: Row,
    values: dict[str, Any],
    responded: bool | None,
    response: float | None,
    resolution: float | None,
    cutoff: float | None,
) -> None:
    elsewhere = "belongs on brand rows; a probe row (responded set) is one probe"
    _misplaced(row, {
        "response_rate": elsewhere, "probes": elsewhere, "answered": elsewhere,
        "published_as": elsewhere, "statistic": "a probe row holds one time, not a statistic",
        "brands": "belongs on the study row (level study)",
        "listed": "belongs on the study row (level study)",
    })
    if responded is None and not row.text("responded"):
        row.bad("responded", "is empty on a probe row; write true or false")
    if responded is True and response is None and not row.text("response_minutes"):
        row.bad("response_minutes", "is empty but responded is true; give the minutes "
                "or set responded to false")
    if responded is False and row.text("response_minutes"):
        row.bad("response_minutes", "has a time but responded is false; clear one of them")
    if responded is False and row.text("resolution_minutes"):
        row.bad("resolution_minutes", "has a time but responded is false; clear it")
    if response is not None and resolution is not None and resolution < response:
        row.bad("resolution_minutes", "is before response_minutes; the answer cannot come "
                "before the first reply")
    if cutoff and response is not None and response > cutoff:
        row.bad("response_minutes", "is past cutoff_minutes; a reply after the cutoff means "
                "responded is false")
    values.update(
        question=row.text("question") or None,
        sent_at=_sent_at(row),
        status="answered" if responded else "unanswered",
        ack_seconds=response if responded else None,
        resolution_seconds=resolution if responded else None,
    )


def _counts(row: Row) -> tuple[int | None, int | None, float | None]:
    """``probes``, ``answered`` and ``response_rate`` of a brand or study row, each None when
    not published: an empty rate is *unknown*, never "answered everything" (write ``100%``
    or ``answered`` equal to ``probes`` for that)."""
    probes = row.count_of("probes", 1, "3")
    answered = row.count_of("answered", 0, "2")
    rate = _rate(row)
    if answered is not None and probes is None:
        row.bad("answered", "needs probes beside it (answered of how many?); give probes")
        answered = None
    elif answered is not None and probes is not None and answered > probes:
        row.bad("answered", f"is more than probes ({probes}); correct one of them")
        answered = None
    if rate is not None and probes is not None:
        from_rate = _answered(row, rate, probes)
        if answered is None:
            answered = from_rate
        elif from_rate is not None and from_rate != answered:
            row.bad("response_rate", f"gives {from_rate} of {probes} answered but answered "
                    f"says {answered}; correct one of them")
    if rate is None and answered is not None and probes is not None:
        rate = answered / probes
    return probes, answered, rate


def _brand_row(row: Row, values: dict[str, Any], response: float | None) -> None:
    _misplaced(row, {
        "question": "belongs on probe rows; set responded to true or false",
        "sent_at": "belongs on probe rows; set responded to true or false",
        "resolution_minutes": "is not supported on brand rows (published mean resolution "
        "times cannot be pooled); move it to note",
        "brands": "belongs on the study row (level study)",
        "listed": "belongs on the study row (level study)",
    })
    statistic = row.choice("statistic", ("mean", "median"))
    if statistic == "median":
        row.bad("statistic", "a brand row's time is its mean over answered probes (brand "
                "medians cannot be pooled); quote a published brand median in note")
    probes, answered, rate = _counts(row)
    if response is None and rate is None and not row.text("response_minutes") \
            and not row.text("response_rate") and not row.text("answered"):
        row.bad("response_minutes", "the brand row carries no figure; give response_minutes, "
                "response_rate or both (or responded for a probe row)")
    if rate == 0 and response is not None:
        row.bad("response_minutes", "the brand answered nothing (response_rate 0) yet has a "
                "time; clear one of them")
    values.update(
        probes=probes,
        answered=answered,
        response_rate=rate,
        mean_ack_seconds=response,
        published_as=row.choice("published_as", EXTREMES) or None,
    )


def _study_row(row: Row, values: dict[str, Any], response: float | None) -> None:
    study_wide = "belongs on probe rows; a study row holds the study's own figures"
    _misplaced(row, {
        "question": study_wide, "sent_at": study_wide, "responded": study_wide,
        "resolution_minutes": "is not supported on study rows; move it to note",
        "published_as": "belongs on the brand row the study named fastest or slowest",
        "sector": "a study row covers every sector; clear it",
    })
    brands = row.count_of("brands", 1, "10")
    probes, answered, rate = _counts(row)
    statistic = row.choice("statistic", ("mean", "median"))
    if response is not None and not statistic:
        row.bad("statistic", "say which average response_minutes is: mean or median")
    if response is None and statistic:
        row.bad("statistic", "names the statistic of response_minutes, which is empty")
    if all(v is None for v in (brands, probes, rate, response, values["cutoff_seconds"])) \
            and not row.problems:
        row.bad("brands", "the study row carries no figure; give brands, probes, "
                "response_rate, cutoff_minutes or response_minutes with its statistic")
    values.update(
        label=values.pop("brand") or None,
        brands=brands,
        probes=probes,
        answered=answered,
        response_rate=rate,
        mean_ack_seconds=response if statistic == "mean" else None,
        median_ack_seconds=response if statistic == "median" else None,
        listed=row.choice("listed", LISTS) or None,
    )
    values["brand"] = ""
